"""A worker killed between the provider's acceptance of a payment and Charter's record of it.

The worker runs in a process of its own. The stand-in accepts the payment order and then
holds the answer; the test kills the worker with SIGKILL at that moment, so the action's
intent is committed, the payment exists at the provider and no result is recorded. The
stand-in has also "forgotten" the idempotency key (its window has passed), so only the
lookup by metadata stands between the restarted worker and a second payment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client

from charter.audit.chain import AuditEntry
from charter.config.settings import app_dsn
from charter.connectors.modern_treasury.payments import REFERENCE_FIELD
from charter.services.audit_verification import verify_tenants
from charter.storage import Database, audit_trail
from tests.support.cli import charter
from tests.support.paths import REPO
from tests.support.paying import pay_through, pending
from tests.support.running import audit_kinds, start
from tests.support.standins.modern_treasury import Fault, ModernTreasuryStandIn

ROOT = REPO


@asynccontextmanager
async def worker_process(
    client: Client, admin_dsn: str, task_queue: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.worker_process",
        client.service_client.config.target_host,
        app_dsn(admin_dsn),
        task_queue,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert line.strip() == b"ready", line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def entries(db: Database, tenant: str) -> list[AuditEntry]:
    async with db.tenant(tenant) as conn:
        return [e async for e in audit_trail.entries(conn, tenant)]


async def test_a_worker_killed_after_the_provider_accepted_pays_once(
    client: Client, admin_dsn: str, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    queue = f"charter-kill-{uuid.uuid4().hex[:8]}"
    await pay_through(db, tenant, mt, timeout="30")
    mt.forget_idempotency_keys = True
    mt.faults.append(Fault("hang"))

    async with worker_process(client, admin_dsn, queue) as first:
        handle = await start(client, tenant, "payables", focus=["INV-1042"], task_queue=queue)
        await asyncio.wait_for(mt.applied.wait(), timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    # The payment exists; Charter holds only its intent.
    assert len(mt.payment_orders) == 1
    killed = await audit_kinds(db, tenant, handle.id)
    assert killed[-1] == "action_intent" and "action_result" not in killed, killed
    assert len(await pending(db, tenant)) == 1

    async with worker_process(client, admin_dsn, queue):
        # The killed attempt times out (start-to-close) and the retry lands here.
        result = await asyncio.wait_for(handle.result(), timeout=180)
    (ps,) = result.proposals
    assert ps.status == "executed" and ps.action is not None
    (order,) = mt.orders_with(REFERENCE_FIELD, "INV-1042")
    assert len(mt.payment_orders) == 1 and ps.action.connector_reference == order["id"]
    kinds = await audit_kinds(db, tenant, handle.id)
    acting = [k for k in kinds if k.startswith("action_")]
    # The retry asks the provider before judging again, finds the order and records it: no
    # second intent.
    assert acting == ["action_intent", "action_result"], kinds
    (result_entry,) = [
        e
        for e in await entries(db, tenant)
        if e.kind == "action_result" and e.workflow_id == handle.id
    ]
    assert result_entry.snapshot["found_after_attempt"] == 1
    (report,) = await verify_tenants(db, [tenant])
    assert report.ok and report.pending_actions == []


async def test_reconcile_settles_the_killed_workers_payment_before_any_retry(
    client: Client,
    admin_dsn: str,
    db: Database,
    tenant: str,
    mt: ModernTreasuryStandIn,
    cli_env: Path,
) -> None:
    """An operator runs `charter actions reconcile` while the run waits for its retry: the
    payment is recorded from the provider, and the retry finds it already done."""
    queue = f"charter-kill-{uuid.uuid4().hex[:8]}"
    await pay_through(db, tenant, mt, timeout="30")
    mt.forget_idempotency_keys = True
    mt.faults.append(Fault("hang"))
    async with worker_process(client, admin_dsn, queue) as first:
        handle = await start(client, tenant, "payables", focus=["INV-1042"], task_queue=queue)
        await asyncio.wait_for(mt.applied.wait(), timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
    assert len(await pending(db, tenant)) == 1

    assert await charter("actions", "reconcile", "--tenant", tenant) == 0
    assert await pending(db, tenant) == []

    async with worker_process(client, admin_dsn, queue):
        result = await asyncio.wait_for(handle.result(), timeout=180)
    (ps,) = result.proposals
    assert ps.status == "executed" and ps.action is not None
    assert ps.action.status == "already_executed"
    assert [o["id"] for o in mt.payment_orders] == [ps.action.connector_reference]
    kinds = [k for k in await audit_kinds(db, tenant, handle.id) if k.startswith("action_")]
    assert kinds == ["action_intent", "action_result"], kinds
