"""A decision whose recording keeps failing is refused after bounded retries, not retried
forever: the approver gets an answer, the exception stays open, nothing executes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities import Deps, all_activities
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from schemas import Decision, DecisionReceipt, RecordDecisionInput, RunState
from tests.support.running import start, until_stage
from tests.support.signing import decide
from tests.support.vault import session_vault
from workflows import AgentLoop

QUEUE = "charter-decision-outage"
attempts: list[int] = []


@activity.defn(name="record_decision")
async def record_decision_during_an_outage(req: RecordDecisionInput) -> DecisionReceipt:
    """Stands in for a database that keeps failing (a retryable error) while a human waits."""
    attempts.append(activity.info().attempt)
    raise RuntimeError("database unavailable")


def _with_outage(deps: Deps) -> list[Callable[..., Any]]:
    real = [a for a in all_activities(deps) if getattr(a, "__name__", "") != "record_decision"]
    return [*real, record_decision_during_an_outage]


async def test_decision_recording_outage_is_refused_after_bounded_retries(
    client: Client, db: Database, tenant: str
) -> None:
    deps = Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner())
    async with Worker(
        client, task_queue=QUEUE, workflows=[AgentLoop], activities=_with_outage(deps)
    ):
        handle = await start(client, tenant, "payables", task_queue=QUEUE, focus=["INV-1043"])
        await until_stage(handle, "awaiting_decision")
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="approve"))
        cause = exc.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "DecisionNotRecorded"
        assert "nothing changed" in cause.message
        assert attempts == [1, 2, 3, 4, 5, 6, 7, 8]
        state: RunState = await handle.query(AgentLoop.state)
        assert state.proposals[0].status == "awaiting_decision"
        assert state.stage == "awaiting_decision"
        await handle.terminate("test done")
