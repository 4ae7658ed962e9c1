"""A model that misbehaves cannot wedge a run: unusable replies escalate at once, and an
unavailable model is retried within the worker's budget, then escalates as unavailable."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities import Deps
from activities.reason import ReasonActivities
from charter.reasoners import RetryBudget
from charter.reasoners.claude import ClaudeReasoner
from charter.storage import Database, runs
from schemas import (
    AgentRunInput,
    Constitution,
    Observation,
    ProposedAction,
    ReasonInput,
    RunRef,
)
from starter import start_run
from tests.support.claude_runs import (
    CLAUDE_QUEUE,
    acme,
    action_count,
    entries,
    pay,
    reason_attempts,
)
from tests.support.running import chain_ok
from tests.support.standins.messages_api import FakeMessagesApi, error_reply, raw_reply, tool_reply
from tests.support.vault import session_vault
from worker import build_worker


async def test_unavailable_model_escalates_within_the_budget(
    client: Client,
    fake_api: FakeMessagesApi,
    claude_reasoner: ClaudeReasoner,
    db: Database,
    tenant: str,
) -> None:
    # Overloaded for ever, with a retry-after that would make it one request a second.
    fake_api.script(
        tenant, *[error_reply(529, "overloaded_error", "busy", **{"retry-after": "-5"})] * 10
    )
    queue = f"budget-{uuid.uuid4().hex[:6]}"
    deps = Deps(
        credentials=session_vault(),
        db=db,
        reasoner=claude_reasoner,
        reasoner_budget=RetryBudget(attempts=3),
    )
    async with build_worker(client, deps, queue):
        run = AgentRunInput(tenant_id=tenant, agent="payables", trigger=f"t-{uuid.uuid4().hex[:8]}")
        handle = await start_run(client, run, task_queue=queue)
        result = await handle.result()
    failure = result.reasoning_failure
    assert failure is not None and failure.kind == "model_unavailable"
    assert "unavailable after 3 attempts" in failure.message and "529" in failure.message
    assert len(fake_api.requests_for(tenant)) == 3  # the budget, not one more
    assert await reason_attempts(handle) == [3]
    assert result.proposals == [] and await action_count(db, tenant) == 0
    async with db.tenant(tenant) as conn:
        row = await runs.get_exception(conn, tenant, failure.exception_id or "")
    assert row is not None and row["status"] == "open"
    [logged] = await entries(db, tenant, "reasoning_failed")
    assert logged["failure"]["kind"] == "model_unavailable"
    await chain_ok(db, tenant)


async def test_unstorable_reply_escalates_and_the_run_goes_on(
    client: Client, claude_worker: Worker, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    """An amount of 1E+400 and a NUL once failed the audit write and retried for ever."""
    fake_api.script(
        tenant,
        tool_reply([{**pay("INV-1042", "1E+400", "Figma"), "rationale": "pay\x00now"}]),
        raw_reply(b"<html>not json</html>"),
    )
    run = AgentRunInput(tenant_id=tenant, agent="payables", trigger=f"t-{uuid.uuid4().hex[:8]}")
    handle = await start_run(client, run, task_queue=CLAUDE_QUEUE)
    result = await handle.result()
    failure = result.reasoning_failure
    assert failure is not None and failure.kind == "unparseable_reply"
    assert any("1E+400" in p for p in failure.problems)
    assert any("not JSON" in p for p in failure.problems)
    assert len(fake_api.requests_for(tenant)) == 2
    assert await reason_attempts(handle) == [1]  # never retried
    assert await action_count(db, tenant) == 0
    await chain_ok(db, tenant)


class _CountingReasoner:
    """Answers with one proposal and counts how often it was asked."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    async def propose(self, observation: Observation, constitution: Constitution) -> list[Any]:
        self.calls += 1
        return [ProposedAction(action="schedule_payment", confidence=0.9, rationale="pay")]


async def test_an_answer_is_kept_in_the_heartbeat_and_never_asked_for_twice(
    db: Database, tenant: str
) -> None:
    reasoner = _CountingReasoner()
    activities = ReasonActivities(Deps(credentials=session_vault(), db=db, reasoner=reasoner))
    request = ReasonInput(
        run=RunRef(tenant_id=tenant, agent="payables", workflow_id="wf-hb", run_id="r-1"),
        observation=Observation(
            tenant_id=tenant, agent="payables", observed_at=datetime.now(UTC), source="test"
        ),
        constitution=acme(),
    )
    beats: list[Any] = []
    first = ActivityEnvironment()
    # The budget counts from the first attempt's schedule, which a real server sets.
    first.info = dataclasses.replace(first.info, scheduled_time=datetime.now(UTC))
    first.on_heartbeat = lambda *details: beats.append(details)
    output = await first.run(activities.reason, request)
    assert reasoner.calls == 1 and beats, "the answer was recorded in a heartbeat"
    # The next attempt starts with the last heartbeat's details: no second model request.
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(first.info, attempt=2, heartbeat_details=list(beats[-1]))
    again = await retry.run(activities.reason, request)
    assert reasoner.calls == 1
    assert again == output
