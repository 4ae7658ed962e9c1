"""`AuditCheckpoint`: verify the audit chains and sign their heads into a sink, on a schedule.

One activity does the work; the workflow gives it bounded retries (a sink that stays
unreachable fails the run after them, the next tick tries again) and turns its refusal into
the run's own failure, so `charter schedule list`, the Temporal UI and any alerting on failed
workflows see `AuditChainBroken` itself, not a wrapped activity error.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.checkpoint import CheckpointActivities
    from charter.temporal.errors import run_failure
    from charter.temporal.heartbeats import HEARTBEAT_TIMEOUT
    from schemas import AuditCheckpointInput, AuditCheckpointResult
    from workflows.retries import bounded_retry

#: Nothing retries forever: eight attempts span about four minutes of backoff, enough for a
#: storage endpoint to come back; after them the run fails and the schedule's next tick
#: starts afresh.
RETRY = bounded_retry(first=timedelta(seconds=2), longest=timedelta(minutes=1), attempts=8)

#: Recomputing every hash of a long chain takes a while; the heartbeat still notices a dead
#: worker within seconds.
TIMEOUT = timedelta(minutes=30)


@workflow.defn(name="AuditCheckpoint")
class AuditCheckpoint:
    @workflow.run
    async def run(self, input: AuditCheckpointInput) -> AuditCheckpointResult:
        try:
            return await workflow.execute_activity_method(
                CheckpointActivities.checkpoint_audit,
                input,
                start_to_close_timeout=TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RETRY,
                summary="verify and sign the audit chain heads",
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise run_failure(cause) from err
            raise
