"""Input that can never succeed is refused once, at start or where it is first seen, never
retried: an unknown agent, an action missing the parameter its connector needs."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from charter.storage import Database
from schemas import AgentRunInput, Decision, RunState, workflow_id_for
from starter import start_run
from tests.support.claude_runs import reason_attempts
from tests.support.claude_runs import start as start_claude
from tests.support.polling import eventually
from tests.support.queues import TASK_QUEUE
from tests.support.running import audit_kinds, chain_ok
from tests.support.signing import signed
from tests.support.standins.messages_api import FakeMessagesApi, tool_reply
from workflows import AgentLoop


async def test_unknown_agent_is_refused_at_start(client: Client, tenant: str) -> None:
    run = AgentRunInput(tenant_id=tenant, agent="sales", trigger="t-1")
    with pytest.raises(ValueError, match="unknown agent 'sales'; known: marketing, payables"):
        await start_run(client, run, task_queue=TASK_QUEUE)
    with pytest.raises(Exception, match="not found"):
        await client.get_workflow_handle(workflow_id_for(tenant, "sales", "t-1")).describe()


async def test_unknown_agent_started_around_the_starter_fails_once(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """It used to make `observe` retry for ever."""
    run = AgentRunInput(tenant_id=tenant, agent="sales", trigger=f"t-{uuid.uuid4().hex[:8]}")
    handle = await client.start_workflow(
        AgentLoop.run, run, id=workflow_id_for(tenant, "sales", run.trigger), task_queue=TASK_QUEUE
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ActivityError)
    cause = failed.value.cause.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert cause.type == "ConnectorError" and "unknown agent 'sales'" in cause.message
    history = await handle.fetch_history()
    started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
    assert [e.activity_task_started_event_attributes.attempt for e in started][-1] == 1
    await chain_ok(db, tenant)


async def test_budget_change_without_amount_fails_its_proposal_once(
    client: Client, claude_worker: Worker, fake_api: FakeMessagesApi, db: Database, tenant: str
) -> None:
    """It used to retry `act` for ever, committing a new intent on every attempt."""
    fake_api.script(
        tenant,
        tool_reply(
            [
                {
                    "action": "adjust_campaign_budget",
                    "reference": "cmp-search",
                    "confidence": 0.95,
                    "rationale": "Raise the budget.",
                }
            ]
        ),
    )
    handle = await start_claude(client, tenant, "marketing", focus=["cmp-search"])

    async def gated() -> RunState | None:
        state = await handle.query(AgentLoop.state)
        return state if state.proposals else None

    state = await eventually(gated)
    if state.proposals[0].status == "awaiting_decision":
        await handle.execute_update(
            AgentLoop.decide,
            await signed(handle, Decision(proposal_id="p1", approver="maya", outcome="approve")),
        )
    result = await handle.result()
    [ps] = result.proposals
    if ps.status == "denied":
        pytest.skip("the constitution denies it before act; nothing to show here")
    assert ps.status == "failed" and ps.failure is not None
    assert "needs the new daily budget as amount" in ps.failure
    kinds = await audit_kinds(db, tenant, handle.id)
    assert kinds.count("action_intent") == 1 and kinds.count("action_refused") == 1
    assert "action_result" not in kinds
    assert await reason_attempts(handle) == [1]
    await chain_ok(db, tenant)
