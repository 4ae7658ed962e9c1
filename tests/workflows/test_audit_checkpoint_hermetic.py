"""`AuditCheckpoint`'s paths with a stub activity on Temporal's time-skipping server.

The real workflow runs against a stub registered under the real activity's name: what it
returns, how a broken chain fails the run (once, with the activity's own error type) and how
an unreachable sink is retried a bounded number of times before the run fails. The real
activity (database, signing, sinks) is covered by tests/workflows/test_audit_checkpoint_schedule.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Deps, all_activities
from activities.checkpoint import CheckpointActivities
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from schemas import AuditCheckpointInput, AuditCheckpointResult, CheckpointedHead
from schemas.errors import ErrorType
from tests.support.running import record_history
from tests.support.vault import session_vault
from workflows import AuditCheckpoint
from workflows.audit_checkpoint import RETRY

NAME = activity._Definition.must_from_callable(CheckpointActivities.checkpoint_audit).name
HEAD = CheckpointedHead(
    tenant_id="acme", seq=7, hash="ab" * 32, created_at="2026-11-29T10:00:00+00:00", key_id="k1"
)


class Stub:
    """Answers `checkpoint_audit` with `answer(attempt)`: a result, or an error to raise."""

    def __init__(self, answer: Callable[[int], AuditCheckpointResult | ApplicationError]) -> None:
        self.answer = answer
        self.inputs: list[AuditCheckpointInput] = []

    @activity.defn(name=NAME)
    async def checkpoint_audit(self, req: AuditCheckpointInput) -> AuditCheckpointResult:
        self.inputs.append(req)
        answer = self.answer(activity.info().attempt)
        if isinstance(answer, ApplicationError):
            raise answer
        return answer


def signed(sink: str) -> AuditCheckpointResult:
    return AuditCheckpointResult(sink=sink, checkpoints=[HEAD], tenants_verified=1)


async def run(
    env: WorkflowEnvironment, stub: Stub, req: AuditCheckpointInput, history: str | None = None
) -> AuditCheckpointResult:
    queue = f"hermetic-ckpt-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[AuditCheckpoint],
        activities=[stub.checkpoint_audit],
    ):
        handle = await env.client.start_workflow(
            AuditCheckpoint.run, req, id=f"charter-audit-checkpoint/{queue}", task_queue=queue
        )
        try:
            return await handle.result()
        finally:
            if history is not None:
                await record_history(handle, history)


async def test_the_activity_is_called_once_with_the_input(time_env: WorkflowEnvironment) -> None:
    stub = Stub(lambda _: signed("/srv/ckpt.jsonl"))
    req = AuditCheckpointInput(sink="/srv/ckpt.jsonl", tenant_id="acme")
    result = await run(time_env, stub, req, "audit_checkpoint_signed")
    assert result == signed("/srv/ckpt.jsonl")
    assert stub.inputs == [req]


async def test_a_broken_chain_fails_the_run_at_once(time_env: WorkflowEnvironment) -> None:
    stub = Stub(
        lambda _: ApplicationError(
            "audit chain broken: acme at seq 3: hash mismatch",
            ["acme", 3],
            type=ErrorType.AUDIT_CHAIN_BROKEN,
            non_retryable=True,
        )
    )
    with pytest.raises(WorkflowFailureError) as exc:
        await run(
            time_env,
            stub,
            AuditCheckpointInput(sink="s3://audit/charter"),
            "audit_checkpoint_chain_broken",
        )
    cause = exc.value.cause
    # The run's own failure carries the type, not a wrapped activity error.
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.AUDIT_CHAIN_BROKEN
    assert cause.non_retryable and "acme at seq 3" in cause.message
    assert list(cause.details) == [["acme", 3]]
    assert len(stub.inputs) == 1  # never retried: no retry makes a broken chain verify


async def test_an_unreachable_sink_is_retried_and_then_fails(time_env: WorkflowEnvironment) -> None:
    stub = Stub(
        lambda _: ApplicationError(
            "cannot write s3://audit/", type=ErrorType.AUDIT_SINK_UNAVAILABLE
        )
    )
    with pytest.raises(WorkflowFailureError) as exc:
        await run(time_env, stub, AuditCheckpointInput(sink="s3://audit/"))
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.AUDIT_SINK_UNAVAILABLE
    # Bounded: the policy's attempts and not one more; the next tick starts afresh.
    assert RETRY.maximum_attempts == 8 and len(stub.inputs) == RETRY.maximum_attempts


async def test_a_sink_that_comes_back_gets_the_checkpoint(time_env: WorkflowEnvironment) -> None:
    def flaky(attempt: int) -> AuditCheckpointResult | ApplicationError:
        if attempt < 3:
            return ApplicationError("timed out", type=ErrorType.AUDIT_SINK_UNAVAILABLE)
        return signed("s3://audit/")

    stub = Stub(flaky)
    result = await run(
        time_env, stub, AuditCheckpointInput(sink="s3://audit/"), "audit_checkpoint_sink_retried"
    )
    assert result.checkpoints == [HEAD] and len(stub.inputs) == 3


def test_the_worker_registers_the_real_activity_under_the_stubbed_name() -> None:
    deps = Deps(credentials=session_vault(), db=cast(Database, None), reasoner=OfflineReasoner())
    names = {activity._Definition.must_from_callable(fn).name for fn in all_activities(deps)}
    assert NAME == "checkpoint_audit" and NAME in names


def test_the_error_types_say_what_a_retry_can_do() -> None:
    assert not ErrorType.AUDIT_CHAIN_BROKEN.retryable
    assert not ErrorType.AUDIT_CHECKPOINT_INVALID.retryable
    assert ErrorType.AUDIT_SINK_UNAVAILABLE.retryable
    assert str(ErrorType.AUDIT_CHAIN_BROKEN) in (RETRY.non_retryable_error_types or [])
