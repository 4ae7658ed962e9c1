"""Reason: the configured reasoner turns the observation into proposals.

Every outcome lands in the audit trail with the tokens it cost. Failures are sorted by what
a retry can do about them:

- transient (rate limit, overload, server error, timeout): a retryable `ReasonerUnavailable`
  application error, so Temporal's retry policy backs off and tries again, within the
  worker's `RetryBudget`; once it is spent the run escalates "model unavailable" instead;
- refused (bad request, authentication, permission): non-retryable `ReasonerRequestRejected`
  or `ReasonerAuthenticationFailed`; the run fails cleanly and nothing executes;
- an unreadable reply (after the reasoner's one corrective retry): returned as a
  `ReasoningFailure` with the raw replies, which the workflow escalates to a human.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities._deps import Deps
from charter.notify.notifier import ExceptionNotice, deliver
from charter.reasoners import (
    ReasonerRejected,
    ReasonerUnavailable,
    Reasoning,
    UnparseableReply,
    reason_with,
)
from charter.runtime.faults import crash_point
from charter.storage import audit_trail, runs
from charter.storage.group_commit import group_for
from charter.temporal.errors import CatalogueError
from charter.temporal.heartbeats import progress
from schemas import (
    MAX_PROPOSALS,
    REASONING_FAILURE_PROPOSAL_ID,
    ReasoningFailure,
    ReasoningFailureInput,
    ReasonInput,
    ReasonOutput,
)
from schemas.errors import ErrorType


class ReasonActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._reasoner = deps.reasoner
        self._budget = deps.reasoner_budget
        self._notifier = deps.notifier

    async def _audit(self, req: ReasonInput, kind: str, snapshot: dict[str, object]) -> None:
        run = req.run
        # Nothing else is written with this entry, so it may share a commit with other
        # runs' entries of the same tenant (group commit).
        await group_for(self._db).append(
            run.tenant_id,
            kind,
            {"agent": run.agent, **snapshot},
            actor=f"reasoner:{self._reasoner.name}",
            workflow_id=run.workflow_id,
            run_id=run.run_id,
        )

    def _spent(self, delay: timedelta | None) -> bool:
        """Whether another attempt would go past the retry budget."""
        info = activity.info()
        elapsed = datetime.now(UTC) - info.scheduled_time
        return (
            info.attempt >= self._budget.attempts
            or elapsed + (delay or timedelta(0)) >= self._budget.time
        )

    async def _ask(self, req: ReasonInput) -> ReasonOutput:
        """The model's answer, as an output; raises only what a retry may fix or nothing can."""
        name = self._reasoner.name
        crash_point("reason")
        try:
            reasoning: Reasoning = await reason_with(
                self._reasoner, req.observation, req.constitution
            )
        except UnparseableReply as exc:
            failure = ReasoningFailure(
                message=str(exc), problems=exc.problems, raw_replies=exc.raw_replies
            )
            return ReasonOutput(reasoner=name, proposals=[], usage=exc.usage, failure=failure)
        except ReasonerRejected as exc:
            # Recorded once: a non-retryable error has no second attempt.
            await self._audit(
                req,
                "reasoning_failed",
                {"reasoner": name, "error": str(exc), "status": exc.status},
            )
            raise CatalogueError(
                ErrorType.REASONER_AUTHENTICATION_FAILED
                if exc.authentication
                else ErrorType.REASONER_REQUEST_REJECTED,
                str(exc),
            ) from None
        except ReasonerUnavailable as exc:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            attempt = activity.info().attempt
            if self._spent(delay):
                message = f"the model was unavailable after {attempt} attempts: {exc}"
                failure = ReasoningFailure(kind="model_unavailable", message=message)
                return ReasonOutput(reasoner=name, proposals=[], failure=failure)
            activity.logger.warning("reasoner unavailable (attempt %d): %s", attempt, exc)
            raise CatalogueError(
                ErrorType.REASONER_UNAVAILABLE, str(exc), next_retry_delay=delay
            ) from None
        if len(reasoning.proposals) > MAX_PROPOSALS:
            # Gating some and dropping the rest would act on part of what the model asked
            # for; a human sees the whole reply instead, and nothing executes.
            problem = (
                f"the reply proposed {len(reasoning.proposals)} actions; "
                f"at most {MAX_PROPOSALS} are accepted per run"
            )
            failure = ReasoningFailure(message=problem, problems=[problem])
            return ReasonOutput(reasoner=name, proposals=[], usage=reasoning.usage, failure=failure)
        return ReasonOutput(reasoner=name, proposals=reasoning.proposals, usage=reasoning.usage)

    @activity.defn(name="reason")
    async def reason(self, req: ReasonInput) -> ReasonOutput:
        # An earlier attempt that got its answer and died before returning it (audit write
        # failed, worker killed) left the answer in its heartbeat: a paid request that
        # succeeded is never repeated.
        earlier = activity.info().heartbeat_details
        if earlier:
            output = ReasonOutput.model_validate(earlier[0])
        else:
            output = await self._ask(req)
            progress(output.model_dump(mode="json"))
        kind = "proposed" if output.failure is None else "reasoning_failed"
        await self._audit(req, kind, output.model_dump(mode="json"))
        return output

    @activity.defn(name="record_reasoning_failure")
    async def record_reasoning_failure(self, req: ReasoningFailureInput) -> ReasoningFailure:
        """Open an exception holding the unreadable reply, for a human to review."""
        run = req.run
        exception_id = runs.exception_id_for(run.workflow_id, REASONING_FAILURE_PROPOSAL_ID)
        failure = req.failure.model_copy(update={"exception_id": exception_id})
        context = {
            "kind": "reasoning_failure",
            "tenant_id": run.tenant_id,
            "agent": run.agent,
            "failure": failure.model_dump(mode="json"),
        }
        async with self._db.tenant(run.tenant_id) as conn:
            await runs.open_exception(
                conn,
                tenant_id=run.tenant_id,
                exception_id=exception_id,
                workflow_id=run.workflow_id,
                proposal_id=REASONING_FAILURE_PROPOSAL_ID,
                agent=run.agent,
                context=context,
                expires_at=req.expires_at,
            )
            await audit_trail.append(
                conn,
                run.tenant_id,
                "exception_opened",
                {"exception_id": exception_id, "expires_at": req.expires_at.isoformat(), **context},
                actor="workflow",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        # Committed: tell the approvers' channel. The card says the reply could not be read
        # and links the run; it carries no buttons, as there is nothing to approve.
        await deliver(
            self._notifier,
            ExceptionNotice(
                kind="opened",
                tenant_id=run.tenant_id,
                exception_id=exception_id,
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                at=activity.info().current_attempt_scheduled_time,
            ),
        )
        return failure
