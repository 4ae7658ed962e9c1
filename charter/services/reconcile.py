"""Settling intents whose outcome nobody recorded: ask the provider, record what it says.

An intent without a result means an attempt was cut short (worker killed, timeout) after
the intent was committed. The provider is asked, with a read credential only, whether it
holds a write under the intent's idempotency key; if it does, the result is recorded
exactly as the act activity would have, so the run's next attempt finds it done. If it
does not, nothing is recorded: the run's next attempt looks again before it creates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from charter.audit.chain import AuditEntry, pending_actions
from charter.connectors import registry
from charter.connectors.base import ConnectorError
from charter.services.books_closing import close_books, unclosed_payments
from charter.services.duplicate_payments import duplicate_detail, duplicate_payments
from charter.storage import Database, actions, audit_trail, ledger
from charter.storage import connector_config as config
from charter.storage.credential_vault import ScopedCredentials
from schemas import Proposal, parse_authorisation

Outcome = Literal[
    "recorded",
    "absent",
    "unreachable",
    "duplicate",
    "bill_payment_recorded",
    "bill_payment_missing",
]
#: Outcomes that leave nothing to settle.
SETTLED: frozenset[str] = frozenset({"recorded", "bill_payment_recorded"})


class Reconciliation(BaseModel):
    tenant_id: str
    idempotency_key: str
    workflow_id: str | None
    outcome: Outcome
    reference: str | None = None
    detail: str = ""


async def reconcile_tenant(
    db: Database,
    tenant_id: str,
    readers: ScopedCredentials,
    books: ScopedCredentials | None = None,
) -> list[Reconciliation]:
    """Settle the tenant's intents without a result (asking the payment provider with read
    credentials only), report bills paid twice, and, given `books` (write credentials, of
    which only the bills provider's are obtained: they record, they cannot pay), record the
    BillPayment of every payment whose bill the books do not show paid."""
    if readers.scope != "read":
        raise ValueError("reconciliation holds read credentials only")
    async with db.tenant(tenant_id) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant_id)]
    intents = {
        e.snapshot["idempotency_key"]: e
        for e in entries
        if e.kind == "action_intent" and isinstance(e.snapshot.get("idempotency_key"), str)
    }
    done = []
    for key in pending_actions(entries):
        intent = intents[key]
        done.append(await _settle(db, tenant_id, readers, key, intent.workflow_id, intent))
    done += await _duplicates(db, tenant_id, readers)
    return done + ([] if books is None else await _close_books(db, tenant_id, books))


async def _close_books(
    db: Database, tenant_id: str, books: ScopedCredentials
) -> list[Reconciliation]:
    """A payment made whose BillPayment was never recorded: recorded now (the same
    `requestid` as the act's, so one the act did send is found, not doubled)."""
    async with db.tenant(tenant_id) as conn:
        serving = await config.serving(conn, tenant_id, "bills")
        payments = (
            [] if serving.provider != "quickbooks" else await unclosed_payments(conn, tenant_id)
        )
    found: list[Reconciliation] = []
    for payment in payments:
        try:
            closing = await close_books(db, books, payment, actor="reconcile")
        except ConnectorError as exc:
            closing_outcome, reference, detail = "bill_payment_missing", None, str(exc)
        else:
            closing_outcome = (
                "bill_payment_recorded" if closing.outcome == "recorded" else "bill_payment_missing"
            )
            reference, detail = closing.bill_payment_id, closing.detail
        found.append(
            Reconciliation(
                tenant_id=tenant_id,
                idempotency_key=payment.key,
                workflow_id=payment.workflow_id,
                outcome=closing_outcome,
                reference=reference,
                detail=f"BillPayment for bill {payment.proposal.reference}: {detail}",
            )
        )
    return found


async def _duplicates(
    db: Database, tenant_id: str, readers: ScopedCredentials
) -> list[Reconciliation]:
    """A bill with more than one live order at the provider, as a critical finding."""
    try:
        found = await duplicate_payments(db, tenant_id, readers)
    except ConnectorError as exc:
        detail = f"cannot list the orders of each bill: {exc}"
        return [
            Reconciliation(
                tenant_id=tenant_id,
                idempotency_key="-",
                workflow_id=None,
                outcome="unreachable",
                detail=detail,
            )
        ]
    return [
        Reconciliation(
            tenant_id=tenant_id,
            idempotency_key=", ".join(o.idempotency_key or "-" for o in d.orders),
            workflow_id=None,
            outcome="duplicate",
            reference=", ".join(o.order_id for o in d.orders),
            detail=duplicate_detail(d),
        )
        for d in found
    ]


async def _settle(
    db: Database,
    tenant_id: str,
    readers: ScopedCredentials,
    key: str,
    workflow_id: str | None,
    intent: AuditEntry,
) -> Reconciliation:
    def result(outcome: Outcome, reference: str | None = None, detail: str = "") -> Reconciliation:
        return Reconciliation(
            tenant_id=tenant_id,
            idempotency_key=key,
            workflow_id=workflow_id,
            outcome=outcome,
            reference=reference,
            detail=detail,
        )

    proposal = Proposal.model_validate(intent.snapshot["proposal"])
    authorisation = parse_authorisation(intent.snapshot["authorisation"])
    try:
        async with db.tenant(tenant_id) as conn:
            route = await registry.write_route(conn, tenant_id, proposal.action)
            credential = await registry.obtain(readers, conn, tenant_id, route.credential_connector)
        finder = registry.lookup(route, credential)
        if finder is None:
            return result("absent", detail=f"{route.config.provider} commits writes with results")
        # Asked with no transaction open: a slow provider holds no connection or lock.
        reference = await finder.find(key)
        if reference is None:
            return result("absent", detail=f"no write under this key at {finder.name}")
        async with db.tenant(tenant_id) as conn:
            await actions.take_turn(conn, tenant_id, proposal, key)
            existing = await actions.executed(conn, tenant_id, key)
            if existing is not None:
                return result("recorded", existing["connector_reference"], "recorded meanwhile")
            # The money moved: the limits count it even if its reservation lapsed meanwhile.
            await ledger.record_moved(conn, tenant_id, key)
            await actions.record_result(
                conn,
                tenant_id=tenant_id,
                idempotency_key=key,
                workflow_id=workflow_id or "",
                run_id=intent.run_id,
                proposal=proposal,
                authorisation=authorisation,
                reference=reference,
                executed_at=datetime.now(UTC),
                actor="reconcile",
                extra={"reconciled": True, "connector": finder.name},
            )
        return result("recorded", reference, f"found at {finder.name}")
    except ConnectorError as exc:
        return result("unreachable", detail=str(exc))
