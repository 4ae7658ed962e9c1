"""A bill paid twice at the provider is found, by reconciliation and by the audit check."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.worker import Worker

from charter.connectors.modern_treasury.payments import KEY_FIELD
from charter.services.reconcile import reconcile_tenant
from charter.storage import Database
from charter_cli.audit import doubled_payments
from tests.support.paying import pay_through
from tests.support.running import start
from tests.support.standins.modern_treasury import ModernTreasuryStandIn
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
