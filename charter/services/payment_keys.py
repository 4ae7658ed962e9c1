"""The idempotency key an action is carried out under.

A payment of a bill is keyed on the payment itself (`charter.governance.payment_identity`):
tenant, the provider that pays, the bill's id, amount, currency and the bill's payment
sequence. Two runs proposing the same payment, their retries and reconciliation all use one
key, so the provider and the lookups see one payment. Other actions keep the key of their
run and proposal.
"""

from __future__ import annotations

from charter.connectors import ConnectorError, registry
from charter.governance.payment_identity import PaymentIdentity, payment_key
from charter.storage import Database, provider_writes, runs
from schemas import Proposal, RunRef

PAYMENT = "schedule_payment"


async def identity_of(db: Database, tenant_id: str, proposal: Proposal) -> PaymentIdentity | None:
    """The payment `proposal` makes, or None when it is no payment of a bill."""
    if proposal.action != PAYMENT or proposal.amount is None or not proposal.reference:
        return None
    async with db.tenant(tenant_id) as conn:
        try:
            route = await registry.write_route(conn, tenant_id, proposal.action)
        except ConnectorError:
            return None  # nothing can pay it: the act refuses it when it asks for the route
        provider = route.config.provider
        sequence = await provider_writes.payment_sequence(
            conn, tenant_id, provider, proposal.reference
        )
    return PaymentIdentity(
        tenant_id=tenant_id,
        provider=provider,
        bill_id=proposal.reference,
        amount=proposal.amount,
        currency=proposal.currency,
        sequence=sequence,
    )


async def action_key(db: Database, run: RunRef, proposal: Proposal) -> str:
    identity = await identity_of(db, run.tenant_id, proposal)
    if identity is None:
        return runs.idempotency_key_for(run.workflow_id, proposal)
    return payment_key(identity)
