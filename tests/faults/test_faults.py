"""Faults with real processes: a worker killed with SIGKILL at each boundary and restarted,
the Temporal dev server restarted on its database file, PostgreSQL restarted, the worker's
connections to PostgreSQL cut through a proxy.

Each scenario runs the same story: INV-1041 executes on its own, INV-1043 waits for maya's
approval. Afterwards, in the books themselves: one payment per invoice (nothing doubled),
the approval recorded once and acted on (nothing lost), and `charter audit verify` passes
with no intent left pending.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from temporalio.client import Client, WorkflowHandle

from charter.config.settings import Settings
from charter.connectors.modern_treasury.payments import REFERENCE_FIELD
from charter.demo.seed import enroll_members, seed
from charter.runtime.faults import POINTS
from charter.services.audit_verification import verify_tenants
from charter.storage import Database
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput, AgentRunResult, Decision, DecisionReceipt, RunState
from starter import start_run
from tests.support.faults import tally
from tests.support.faults.proxy import Proxy
from tests.support.faults.servers import ROOT, Postgres, Temporal, WorkerProcess
from tests.support.paying import acme_payments_provider, pay_through, pending
from tests.support.signing import signed
from tests.support.standins.modern_treasury import ModernTreasuryStandIn
from tests.support.standins.serving import serving
from tests.support.vault import session_vault
from workflows import AgentLoop

QUEUE = "charter-faults"
APPROVE = Decision(proposal_id="p2", approver="maya", outcome="approve", reason="known studio")


async def connect(temporal: Temporal) -> Client:
    return await Client.connect(temporal.address, plugins=[CharterPlugin.from_settings(Settings())])


@pytest.fixture
async def worker(
    dsn: str, proxy: Proxy, temporal: Temporal, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    # The same database, reached over TCP through the proxy instead of the Unix socket.
    database = urlsplit(dsn).path
    through_proxy = f"postgresql://postgres@127.0.0.1:{proxy.port}{database}"
    env = {
        **os.environ,
        "DATABASE_URL": through_proxy,
        "TEMPORAL_ADDRESS": temporal.address,
        "CHARTER_TASK_QUEUE": QUEUE,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("ANTHROPIC_API_KEY", None)
    process = WorkerProcess(env=env, log=tmp_path / "worker.log")
    yield process
    process.stop()


@pytest.fixture
async def ftenant(fdb: Database, dsn: str) -> str:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await seed(fdb, tenant, template="acme", actor="test", keys=session_vault().keys, admin_dsn=dsn)
    await enroll_members(
        dsn, tenant, template="acme", actor="test", folder=Settings().member_key_folder
    )
    return tenant


async def begin(
    client: Client, tenant: str, bills: tuple[str, str] = ("INV-1041", "INV-1043")
) -> WorkflowHandle[Any, AgentRunResult]:
    """A run on two bills: the first executes on its own, the second waits for maya."""
    run = AgentRunInput(
        tenant_id=tenant,
        agent="payables",
        trigger=f"t-{uuid.uuid4().hex[:8]}",
        focus=list(bills),
    )
    return await start_run(client, run, task_queue=QUEUE)


async def awaiting(handle: WorkflowHandle[Any, Any], timeout: float = 120) -> RunState:
    """The run's state once it waits for maya (queries fail while no worker is up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            state: RunState = await handle.query(AgentLoop.state)
            if any(p.status == "awaiting_decision" for p in state.proposals):
                return state
        except Exception:  # no worker to answer yet, or the server is coming back
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the run never waited for a decision")
        await asyncio.sleep(0.5)


async def decide(handle: WorkflowHandle[Any, Any], timeout: float = 120) -> DecisionReceipt:
    """Send maya's approval, again if the server was away; the same decision twice is
    answered with the recorded receipt, so resending is safe."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await handle.execute_update(AgentLoop.decide, await signed(handle, APPROVE))
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)


async def nothing_lost_nothing_doubled(db: Database, tenant: str, result: AgentRunResult) -> None:
    assert [p.status for p in result.proposals] == ["executed", "executed"], result.proposals
    async with db.tenant(tenant) as conn:
        payments = await conn.fetch(
            "SELECT invoice_id, count(*) AS n FROM charter.payments WHERE tenant_id = $1 "
            "AND invoice_id IN ('INV-1041', 'INV-1043') GROUP BY invoice_id",
            tenant,
        )
        actions = await conn.fetchval(
            "SELECT count(*) FROM charter.actions WHERE tenant_id = $1", tenant
        )
        decisions = await conn.fetch(
            "SELECT approver, outcome FROM charter.decisions WHERE tenant_id = $1", tenant
        )
    assert {r["invoice_id"]: r["n"] for r in payments} == {"INV-1041": 1, "INV-1043": 1}
    assert actions == 2
    assert [(d["approver"], d["outcome"]) for d in decisions] == [("maya", "approve")]
    [report] = await verify_tenants(db, [tenant])
    assert report.ok, report
    assert report.pending_actions == []


@pytest.mark.parametrize("point", POINTS)
async def test_worker_killed_at_a_boundary(
    point: str, temporal: Temporal, worker: WorkerProcess, fdb: Database, ftenant: str
) -> None:
    client = await connect(temporal)
    worker.start(crash_at=point)
    handle = await begin(client, ftenant)
    if point == "decision-recorded":
        await awaiting(handle)
        decision = asyncio.create_task(decide(handle))
        assert await worker.killed() == -9
        worker.start()
        receipt = await decision
    else:
        assert await worker.killed() == -9
        worker.start()
        await awaiting(handle)
        receipt = await decide(handle)
    assert receipt.status == "approved"
    await nothing_lost_nothing_doubled(fdb, ftenant, await handle.result())


async def test_temporal_restarted_on_its_database(
    temporal: Temporal, worker: WorkerProcess, fdb: Database, ftenant: str
) -> None:
    worker.start()
    handle = await begin(await connect(temporal), ftenant)
    await awaiting(handle)
    temporal.stop()
    temporal.start()
    client = await connect(temporal)
    handle = client.get_workflow_handle_for(AgentLoop.run, handle.id)
    await awaiting(handle)  # the run survived the restart: same state, still waiting
    await decide(handle)
    await nothing_lost_nothing_doubled(fdb, ftenant, await handle.result())


async def test_postgres_restarted(
    pg: Postgres, temporal: Temporal, worker: WorkerProcess, fdb: Database, ftenant: str
) -> None:
    worker.start()
    handle = await begin(await connect(temporal), ftenant)
    await awaiting(handle)
    await asyncio.to_thread(pg.restart)
    await decide(handle)
    await nothing_lost_nothing_doubled(fdb, ftenant, await handle.result())


async def test_connections_cut_and_restored(
    proxy: Proxy, temporal: Temporal, worker: WorkerProcess, fdb: Database, ftenant: str
) -> None:
    worker.start()
    handle = await begin(await connect(temporal), ftenant)
    await awaiting(handle)
    approve = await signed(handle, APPROVE)
    proxy.cut()
    # The decision is sent during a 15 s cut: it is retried, not refused.
    decision = asyncio.create_task(handle.execute_update(AgentLoop.decide, approve))
    await asyncio.sleep(15)
    proxy.restore()
    receipt = await decision
    assert receipt.status == "approved"
    await nothing_lost_nothing_doubled(fdb, ftenant, await handle.result())


def test_audit_verify_cli_passes_with_nothing_pending(
    dsn: str, temporal: Temporal, tmp_path: Path
) -> None:
    """Last: the operator's own check over every tenant the scenarios above used."""
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "TEMPORAL_ADDRESS": temporal.address,
        "CHARTER_STATE_DIR": str(tmp_path),
        "COLUMNS": "250",
    }
    out = subprocess.run(
        [sys.executable, "-m", "charter_cli", "audit", "verify"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout and "verified" in out.stdout


#: Paid through the provider: the first on its own; the second, above $10,000, by maya (every
#: vendor's account there is verified, so Bluebird's bill would not wait for her).
PAID_THROUGH_PROVIDER = ("INV-1041", "INV-1044")


async def _paid_once(
    db: Database, tenant: str, mt: ModernTreasuryStandIn, scenario: str, bills: Sequence[str]
) -> None:
    """Every approved bill has exactly one order at the provider, and nothing is pending."""
    orders = {b: len(mt.orders_with(REFERENCE_FIELD, b)) for b in bills}
    stuck = await pending(db, tenant)
    doubled, lost = tally.record(scenario, orders, len(stuck))
    assert (doubled, lost, stuck) == (0, 0, []), orders


@asynccontextmanager
async def forgetful_lagging_provider(
    db: Database, tenant: str
) -> AsyncIterator[ModernTreasuryStandIn]:
    """Modern Treasury's stand-in forgetting every idempotency key at once and lagging its
    lists by two seconds, paying the tenant's bills."""
    async with serving(acme_payments_provider()) as mt:
        mt.forget_idempotency_keys = True
        mt.list_lag = 2.0
        await pay_through(db, tenant, mt, timeout="3")
        yield mt


@pytest.mark.parametrize("point", POINTS)
async def test_paying_through_a_forgetful_lagging_provider_with_the_worker_killed(
    point: str, temporal: Temporal, worker: WorkerProcess, fdb: Database, ftenant: str
) -> None:
    """The same story paid through the forgetful, lagging provider, the worker killed at
    the boundary."""
    async with forgetful_lagging_provider(fdb, ftenant) as mt:
        client = await connect(temporal)
        worker.start(crash_at=point)
        handle = await begin(client, ftenant, PAID_THROUGH_PROVIDER)
        if point == "decision-recorded":
            await awaiting(handle)
            decision = asyncio.create_task(decide(handle))
            assert await worker.killed() == -9
            worker.start()
            await decision
        else:
            assert await worker.killed() == -9
            worker.start()
            await awaiting(handle)
            await decide(handle)
        result = await asyncio.wait_for(handle.result(), timeout=300)
        assert [p.status for p in result.proposals] == ["executed", "executed"], result.proposals
        await _paid_once(fdb, ftenant, mt, f"killed at {point}", PAID_THROUGH_PROVIDER)


@pytest.mark.parametrize("point", ["intent-committed", "connector-wrote"])
async def test_two_runs_racing_on_one_bill_pay_it_once(
    point: str, temporal: Temporal, worker: WorkerProcess, fdb: Database, ftenant: str
) -> None:
    """Two runs started at once on INV-1041 through the forgetful, lagging provider, the
    worker killed as the first of them writes: one order, both runs done."""
    async with forgetful_lagging_provider(fdb, ftenant) as mt:
        client = await connect(temporal)
        worker.start(crash_at=point)
        runs = [
            await start_run(
                client,
                AgentRunInput(
                    tenant_id=ftenant,
                    agent="payables",
                    trigger=f"t-{uuid.uuid4().hex[:8]}",
                    focus=["INV-1041"],
                ),
                task_queue=QUEUE,
            )
            for _ in range(2)
        ]
        assert await worker.killed() == -9
        worker.start()
        results = [await asyncio.wait_for(r.result(), timeout=300) for r in runs]
        statuses = sorted(p.action.status for r in results for p in r.proposals if p.action)
        assert len(statuses) == 2 and set(statuses) <= {"executed", "already_executed"}, results
        await _paid_once(fdb, ftenant, mt, f"two runs racing, killed at {point}", ["INV-1041"])
