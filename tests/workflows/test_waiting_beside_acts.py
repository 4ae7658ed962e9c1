"""Acting never blocks waiting, retries of an act end, and a decision sent twice is answered
with what was recorded. Real Temporal dev server and PostgreSQL; the `act` activity is the
real one behind a gate the test opens (a connector that hangs, then answers)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import ActActivities, Deps, all_activities
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from schemas import ActInput, ActionResult, Decision
from tests.support.running import audit_kinds, chain_ok, record_history, start, until_stage
from tests.support.signing import signed
from tests.support.vault import session_vault
from workflows import AgentLoop


class HangingConnector:
    """`act` waits until released; `fail_with` makes every attempt fail retryably instead."""

    def __init__(self, db: Database) -> None:
        self.real = ActActivities(
            Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner())
        )
        self.release = asyncio.Event()
        self.fail_with: str | None = None
        self.attempts = 0

    @activity.defn(name="act")
    async def act(self, req: ActInput) -> ActionResult:
        self.attempts += 1
        if self.fail_with is not None:
            raise ApplicationError(self.fail_with, type="ConnectorUnreachable")
        await self.release.wait()
        return await self.real.act(req)


@asynccontextmanager
async def hanging_worker(
    client: Client, db: Database
) -> AsyncIterator[tuple[str, HangingConnector]]:
    """A worker with every real activity but `act`, which is the hanging connector's."""
    queue = f"hanging-{uuid.uuid4().hex[:6]}"
    connector = HangingConnector(db)
    others = [
        a
        for a in all_activities(
            Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner())
        )
        if a.__name__ != "act"
    ]
    async with Worker(
        client, task_queue=queue, workflows=[AgentLoop], activities=[*others, connector.act]
    ):
        yield queue, connector


@pytest.fixture
async def hanging(client: Client, db: Database) -> AsyncIterator[tuple[str, HangingConnector]]:
    async with hanging_worker(client, db) as pair:
        yield pair


async def test_reminders_and_expiry_are_on_time_while_an_act_hangs(
    client: Client, db: Database, tenant: str, hanging: tuple[str, HangingConnector]
) -> None:
    queue, connector = hanging
    # INV-1041 executes on its own (its act hangs); INV-1043 waits for a human.
    handle = await start(
        client,
        tenant,
        "payables",
        task_queue=queue,
        focus=["INV-1041", "INV-1043"],
        decision_timeout=timedelta(seconds=7),
        reminder_interval=timedelta(minutes=1),
    )
    state = await until_stage(handle, "awaiting_decision")
    assert {p.proposal.reference: p.status for p in state.proposals} == {
        "INV-1041": "gated",
        "INV-1043": "awaiting_decision",
    }

    async def expired() -> bool:
        current = await handle.query(AgentLoop.state)
        return any(p.status == "expired" for p in current.proposals)

    # The expiry of INV-1043 is recorded at its deadline, although the act of INV-1041 has
    # not returned (it used to wait behind it).
    for _ in range(200):
        if await expired():
            break
        await asyncio.sleep(0.1)
    assert await expired()
    assert connector.attempts == 1 and not connector.release.is_set()
    kinds = await audit_kinds(db, tenant, handle.id)
    assert "exception_expired" in kinds and "action_result" not in kinds

    connector.release.set()
    result = await handle.result()
    assert {p.proposal.reference: p.status for p in result.proposals} == {
        "INV-1041": "executed",
        "INV-1043": "expired",
    }
    await chain_ok(db, tenant)
    await record_history(handle, "act_beside_the_wait")


async def test_an_act_whose_retries_run_out_fails_its_proposal_only(
    time_env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    """The connector stays unreachable: after the bounded retries (minutes of backoff,
    skipped here) the proposal fails with the last error; the run completes."""
    async with hanging_worker(time_env.client, db) as (queue, connector):
        connector.fail_with = "connection refused"
        handle = await start(
            time_env.client, tenant, "payables", task_queue=queue, focus=["INV-1041", "INV-1043"]
        )
        result = await handle.result()
    statuses = {p.proposal.reference: p for p in result.proposals}
    failed = statuses["INV-1041"]
    assert failed.status == "failed" and failed.action is None
    assert failed.failure is not None and "retries exhausted" in failed.failure
    assert "connection refused" in failed.failure
    assert statuses["INV-1043"].status == "expired"
    assert connector.attempts == 20
    await chain_ok(db, tenant)
    await record_history(handle, "act_retries_exhausted")


async def test_a_decision_sent_twice_is_answered_with_the_recorded_one(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    await until_stage(handle, "awaiting_decision")
    decision = await signed(
        handle, Decision(proposal_id="p1", approver="maya", outcome="approve", reason="ok")
    )
    # An update racing an identical signal and a second identical update (two CLIs).
    signal = handle.signal(AgentLoop.decide_signal, decision)
    first, second, _ = await asyncio.gather(
        handle.execute_update(AgentLoop.decide, decision),
        handle.execute_update(AgentLoop.decide, decision),
        signal,
    )
    assert first == second
    assert first.outcome == "approve" and first.approver == "maya"
    result = await handle.result()
    [ps] = result.proposals
    assert ps.status == "executed" and [d.approver for d in ps.decisions] == ["maya"]
    kinds = await audit_kinds(db, tenant, handle.id)
    assert kinds.count("decision") == 1 and kinds.count("action_result") == 1
    # Afterwards, too: the same decision gets the same receipt, a different one is refused.
    await chain_ok(db, tenant)
