"""Closing the books once a bill's payment is made: a BillPayment in QuickBooks.

The payment provider moved the money (its result is recorded under the payment's
idempotency key); the bills provider must now show the bill paid, or the next run would see
it open. Written like every provider write, never inside a transaction:

1. in a short transaction: nothing to do if the bills are not QuickBooks' or a BillPayment
   is already recorded for the payment; otherwise the write credential is obtained and a
   `bill_payment_intent` appended;
2. with no transaction open: the BillPayment created, under Intuit's `requestid` derived
   from the payment's key, so a retry (the worker killed after the create, an answer lost)
   returns the BillPayment the first request made rather than a second one;
3. in a short transaction: `bill_payment_recorded`.

Intuit turning the request away for now (`ProviderUnavailable`) is raised for the caller to
retry; anything else (no write credential, no payment account configured, a refusal) is
recorded as `bill_payment_missing` with its reason: the payment stands, and
`charter actions reconcile` records the BillPayment later.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from charter.connectors import registry
from charter.connectors.base import ConnectorError, ProviderUnavailable
from charter.connectors.quickbooks import APP_CREDENTIAL, PROVIDER, QuickBooksSettings
from charter.connectors.quickbooks.payments import QuickBooksBillPayments, request_id
from charter.runtime.bulkheads import Bulkheads
from charter.storage import Database, audit_trail
from charter.storage import connector_config as config
from charter.storage.credential_vault import ScopedCredentials
from schemas import Proposal

BILL_PAYMENT_INTENT = "bill_payment_intent"
BILL_PAYMENT_RECORDED = "bill_payment_recorded"
BILL_PAYMENT_MISSING = "bill_payment_missing"

Outcome = Literal["recorded", "not_applicable", "missing"]


@dataclass(frozen=True)
class Closing:
    outcome: Outcome
    bill_payment_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Payment:
    """A payment made at the payment provider, as the trail records it."""

    tenant_id: str
    proposal: Proposal
    key: str
    """The payment's idempotency key: one per payment of a bill, whatever the run."""
    reference: str
    """The payment provider's reference for it."""
    workflow_id: str | None = None
    run_id: str | None = None


async def recorded_bill_payment(conn: asyncpg.Connection, tenant_id: str, key: str) -> str | None:
    """The BillPayment recorded for the payment under `key`, if one is."""
    value = await conn.fetchval(
        "SELECT snapshot ->> 'bill_payment_id' FROM charter.audit_entries WHERE tenant_id = $1 "
        "AND kind = $2 AND snapshot ->> 'payment_key' = $3 ORDER BY seq LIMIT 1",
        tenant_id,
        BILL_PAYMENT_RECORDED,
        key,
    )
    return None if value is None else str(value)


async def unclosed_payments(conn: asyncpg.Connection, tenant_id: str) -> list[Payment]:
    """Bills paid (an action recorded) with no BillPayment recorded for the payment."""
    rows = await conn.fetch(
        "SELECT a.idempotency_key, a.workflow_id, a.proposal, a.connector_reference "
        "FROM charter.actions a WHERE a.tenant_id = $1 AND a.action = 'schedule_payment' "
        "AND NOT EXISTS (SELECT 1 FROM charter.audit_entries e WHERE e.tenant_id = $1 "
        "AND e.kind = $2 AND e.snapshot ->> 'payment_key' = a.idempotency_key) "
        "ORDER BY a.executed_at",
        tenant_id,
        BILL_PAYMENT_RECORDED,
    )
    return [
        Payment(
            tenant_id,
            Proposal.model_validate_json(r["proposal"]),
            r["idempotency_key"],
            r["connector_reference"],
            r["workflow_id"],
        )
        for r in rows
    ]


def _applies(proposal: Proposal) -> bool:
    return (
        proposal.action == "schedule_payment"
        and bool(proposal.reference)
        and proposal.amount is not None
    )


async def close_books(
    db: Database,
    writers: ScopedCredentials,
    payment: Payment,
    *,
    actor: str,
    bulkheads: Bulkheads | None = None,
) -> Closing:
    """Record the payment's BillPayment in QuickBooks once (see the module's docstring)."""
    proposal, tenant_id = payment.proposal, payment.tenant_id
    if not _applies(proposal):
        return Closing("not_applicable")
    async with db.tenant(tenant_id) as conn:
        bills = await config.serving(conn, tenant_id, "bills")
        if bills.provider != PROVIDER:
            return Closing("not_applicable", detail=f"the bills are {bills.provider}'s")
        earlier = await recorded_bill_payment(conn, tenant_id, payment.key)
        if earlier is not None:
            return Closing("recorded", earlier, "recorded before")
        try:
            tokens = await registry.obtain(writers, conn, tenant_id, PROVIDER)
            app = await registry.obtain(writers, conn, tenant_id, APP_CREDENTIAL)
        except ConnectorError as exc:
            return await _missing(conn, payment, actor, f"no QuickBooks write credential: {exc}")
        await _append(conn, payment, BILL_PAYMENT_INTENT, actor, {})
    settings = QuickBooksSettings.model_validate(bills.settings)
    try:
        tokens = await registry.quickbooks_tokens(
            writers, db, bulkheads, tenant_id, settings, tokens, app
        )
        writer = QuickBooksBillPayments(settings, tokens, app)
        assert proposal.reference is not None and proposal.amount is not None
        reference, amount = proposal.reference, proposal.amount
        recorded = await writer.record(
            bill_id=reference,
            amount=amount,
            currency=proposal.currency,
            payment_key=payment.key,
            note=f"Charter payment {payment.reference}",
        )
    except ProviderUnavailable:
        raise
    except ConnectorError as exc:
        async with db.tenant(tenant_id) as conn:
            return await _missing(conn, payment, actor, str(exc))
    async with db.tenant(tenant_id) as conn:
        earlier = await recorded_bill_payment(conn, tenant_id, payment.key)
        if earlier is not None:  # another attempt recorded it meanwhile (the same one)
            return Closing("recorded", earlier, "recorded meanwhile")
        detail = {"bill_payment_id": recorded.bill_payment_id, "balance": str(recorded.balance)}
        await _append(conn, payment, BILL_PAYMENT_RECORDED, actor, detail)
    return Closing("recorded", recorded.bill_payment_id, f"bill balance {recorded.balance}")


async def record_missing(db: Database, payment: Payment, actor: str, reason: str) -> Closing:
    """Give up on the BillPayment for now (reconcile records it later), audited."""
    async with db.tenant(payment.tenant_id) as conn:
        return await _missing(conn, payment, actor, reason)


async def _missing(conn: asyncpg.Connection, payment: Payment, actor: str, reason: str) -> Closing:
    await _append(conn, payment, BILL_PAYMENT_MISSING, actor, {"reason": reason})
    return Closing("missing", detail=reason)


async def _append(
    conn: asyncpg.Connection, payment: Payment, kind: str, actor: str, extra: dict[str, Any]
) -> None:
    proposal = payment.proposal
    snapshot: dict[str, Any] = {
        # Not `idempotency_key`: these entries neither open nor close the payment's intent.
        "payment_key": payment.key,
        "payment_reference": payment.reference,
        "provider": PROVIDER,
        "bill_id": proposal.reference,
        "amount": str(proposal.amount if proposal.amount is not None else Decimal(0)),
        "currency": proposal.currency,
        "request_id": request_id(payment.key),
        **extra,
    }
    await audit_trail.append(
        conn,
        payment.tenant_id,
        kind,
        snapshot,
        actor=actor,
        workflow_id=payment.workflow_id,
        run_id=payment.run_id,
    )
