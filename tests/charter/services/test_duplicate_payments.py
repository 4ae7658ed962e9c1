"""A bill paid twice at the provider is found, by reconciliation and by the audit check."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from charter.connectors.modern_treasury.payments import KEY_FIELD
from charter.services.audit_verification import verify_tenants
from charter.services.duplicate_watch import FOUND, look
from charter.services.reconcile import reconcile_tenant
from charter.storage import Database, audit_trail
from charter_cli.audit import doubled_payments
from tests.support.cli import run_main
from tests.support.paying import pay_through
from tests.support.running import start
from tests.support.standins.modern_treasury import ModernTreasuryStandIn
from tests.support.told import Told
from tests.support.vault import session_vault


async def test_a_duplicate_order_at_the_provider_is_flagged_critical(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    await pay_through(db, tenant, mt)
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=120)).proposals
    assert ps.status == "executed" and ps.action is not None
    readers = session_vault().scoped("read")
    assert await reconcile_tenant(db, tenant, readers) == []
    assert await doubled_payments(db, [tenant], session_vault()) == []

    doubled = mt.duplicate(ps.action.connector_reference, **{KEY_FIELD: "another-key"})
    (found,) = await reconcile_tenant(db, tenant, readers)
    assert found.outcome == "duplicate"
    assert found.reference is not None
    assert set(found.reference.split(", ")) == {ps.action.connector_reference, doubled["id"]}
    assert found.detail.startswith("CRITICAL: bill INV-1042 has 2 payment orders")
    assert "still cancellable" in found.detail  # both are only approved so far
    (problem,) = await doubled_payments(db, [tenant], session_vault())
    assert problem.startswith(f"{tenant}: CRITICAL: bill INV-1042")

    # Cancelled at the provider by a human: no longer a duplicate.
    doubled["status"] = "cancelled"
    assert await reconcile_tenant(db, tenant, readers) == []


async def test_an_owner_cancels_the_duplicate_while_the_provider_allows_it(
    client: Client,
    worker: Worker,
    db: Database,
    admin_dsn: str,
    tenant: str,
    mt: ModernTreasuryStandIn,
    cli_env: Path,
) -> None:
    await pay_through(db, tenant, mt)
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=120)).proposals
    assert ps.action is not None
    first = ps.action.connector_reference
    doubled = mt.duplicate(first, **{KEY_FIELD: "another-key"})["id"]

    async def cancel(order: str, member: str = "maya") -> tuple[int, str]:
        ran = await run_main(
            "actions", "cancel-duplicate", "INV-1042", order, "--tenant", tenant, "--as", member
        )
        return ran.code, " ".join(ran.output.split())

    for order, member, refusal in [
        (doubled, "sam", "'sam' is not an active owner"),
        ("po-nope", "maya", "order po-nope is not a live payment order of bill INV-1042"),
    ]:
        code, out = await cancel(order, member)
        assert code == 2 and refusal in out, out
    assert _status(mt, doubled) == "approved"
    code, out = await cancel(doubled)
    assert code == 0 and f"{doubled} of bill INV-1042: cancelled; still paying it: {first}" in out
    assert _status(mt, doubled) == "cancelled" and _status(mt, first) == "approved"
    assert await reconcile_tenant(db, tenant, session_vault().scoped("read")) == []
    # The one order left is never cancelled; nor is one already sent to the bank.
    code, out = await cancel(first)
    assert code == 2 and "is bill INV-1042's only live order" in out, out
    sent = mt.duplicate(first, **{KEY_FIELD: "a-third-key"})
    sent["status"] = "sent"
    code, out = await cancel(sent["id"])
    assert code == 2 and "is sent: it can no longer be cancelled" in out, out
    async with db.tenant(tenant) as conn:
        kinds = [(e.kind, e.actor) async for e in audit_trail.entries(conn, tenant)]
    assert kinds.count(("duplicate_cancel_decided", "member:maya")) == 1
    assert kinds.count(("duplicate_cancelled", "charter")) == 1
    [report] = await verify_tenants(db, [tenant])
    assert report.ok, report.problem


async def test_the_workers_watch_audits_and_tells_a_duplicate_once(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    await pay_through(db, tenant, mt)
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=120)).proposals
    assert ps.action is not None
    readers, told = session_vault().scoped("read"), Told()
    assert await look(db, readers, told) == 0 and told.alerts == []

    doubled = mt.duplicate(ps.action.connector_reference, **{KEY_FIELD: "another-key"})
    # Two rounds (or two workers): one audit entry and one alert for the same two orders.
    assert await look(db, readers, told) >= 1
    assert await look(db, readers, told) >= 1
    mine = [a for a in told.alerts if a.tenant_id == tenant]
    assert [a.text.split(" has ")[0] for a in mine] == ["CRITICAL: bill INV-1042"]
    async with db.tenant(tenant) as conn:
        found = [e async for e in audit_trail.entries(conn, tenant) if e.kind == FOUND]
    assert [sorted(e.snapshot["orders"]) for e in found] == [
        sorted([ps.action.connector_reference, doubled["id"]])
    ]
    # A third order makes it a new finding; once cancelled to one, nothing is counted.
    mt.duplicate(ps.action.connector_reference, **{KEY_FIELD: "a-third-key"})
    await look(db, readers, told)
    assert len([a for a in told.alerts if a.tenant_id == tenant]) == 2
    for order in mt.payment_orders:
        if order["id"] != ps.action.connector_reference:
            order["status"] = "cancelled"
    before = len(told.alerts)
    await look(db, readers, told)
    assert len(told.alerts) == before


def _status(mt: ModernTreasuryStandIn, order_id: str) -> str:
    return next(str(o["status"]) for o in mt.payment_orders if o["id"] == order_id)
