"""Reason: the configured reasoner turns the observation into proposals.

Every outcome lands in the audit trail with the tokens it cost. Failures are sorted by what
a retry can do about them:

- transient (rate limit, overload, server error, a request past its deadline, an attempt
  past its own, a worker lost mid-attempt): a retryable `ReasonerUnavailable` application
  error with the backoff chosen here, so Temporal tries again, within the worker's one
  `RetryBudget` for all of them; once it is spent the run escalates "model unavailable";
- a refusal (`stop_reason: refusal`): a `ReasoningFailure` showing it, escalated;
- refused (bad request, authentication, permission): non-retryable `ReasonerRequestRejected`
  or `ReasonerAuthenticationFailed`; the run fails cleanly and nothing executes;
- an unreadable reply (after the reasoner's one corrective retry): returned as a
  `ReasoningFailure` with the raw replies, which the workflow escalates to a human.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities._deps import Deps
from charter.notify.notifier import ExceptionNotice, deliver
from charter.reasoners import (
    ModelRefused,
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

    def _elapsed(self) -> timedelta:
        return datetime.now(UTC) - activity.info().scheduled_time

    def _spent(self, delay: timedelta) -> bool:
        """Whether another attempt, `delay` from now, would go past the retry budget."""
        return (
            activity.info().attempt >= self._budget.attempts
            or self._elapsed() + delay >= self._budget.time
        )

    def _exhausted(self) -> bool:
        """Whether earlier attempts already spent the budget, so this one must not ask."""
        return (
            activity.info().attempt > self._budget.attempts or self._elapsed() >= self._budget.time
        )

    def _deadline(self) -> float:
        """Seconds this attempt may take: its own bound, and never past the budget's time
        plus one request deadline."""
        remaining = self._budget.time - self._elapsed() + self._budget.request
        return max(min(self._budget.attempt, remaining).total_seconds(), 0.0)

    def _unavailable(self, name: str, reason: str) -> ReasonOutput:
        attempt = activity.info().attempt
        message = f"the model was unavailable after {attempt} attempts: {reason}"
        failure = ReasoningFailure(kind="model_unavailable", message=message)
        return ReasonOutput(reasoner=name, proposals=[], failure=failure)

    def _retry_or_escalate(self, name: str, exc: ReasonerUnavailable) -> ReasonOutput:
        """Escalate once the budget is spent; otherwise raise for Temporal to retry after the
        backoff chosen here, so the budget knows when the next attempt starts."""
        attempt = activity.info().attempt
        delay = timedelta(seconds=exc.retry_after or self._budget.backoff(attempt).total_seconds())
        if self._spent(delay):
            return self._unavailable(name, str(exc))
        activity.logger.warning("reasoner unavailable (attempt %d): %s", attempt, exc)
        raise CatalogueError(
            ErrorType.REASONER_UNAVAILABLE, str(exc), next_retry_delay=delay
        ) from None

    async def _ask(self, req: ReasonInput) -> ReasonOutput:
        """The model's answer, as an output; raises only what a retry may fix or nothing can."""
        name = self._reasoner.name
        crash_point("reason")
        if self._exhausted():
            # The last attempt ended without reporting (its worker was lost, or Temporal's
            # timeout cut it off): the budget counts it like any other failure.
            return self._unavailable(
                name,
                "the last attempt ended without an answer (its worker was lost or it ran "
                "past the activity's timeout)",
            )
        deadline = self._deadline()
        try:
            async with asyncio.timeout(deadline):
                reasoning: Reasoning = await reason_with(
                    self._reasoner, req.observation, req.constitution
                )
        except TimeoutError:
            late = ReasonerUnavailable(
                f"the reason activity did not finish within {deadline:g}s",
                status=None,
                retry_after=None,
            )
            return self._retry_or_escalate(name, late)
        except UnparseableReply as exc:
            failure = ReasoningFailure(
                message=str(exc), problems=exc.problems, raw_replies=exc.raw_replies
            )
            return ReasonOutput(reasoner=name, proposals=[], usage=exc.usage, failure=failure)
        except ModelRefused as exc:
            failure = ReasoningFailure(
                kind="refusal", message=str(exc), raw_replies=[exc.raw_reply]
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
            return self._retry_or_escalate(name, exc)
        return self._bounded(name, reasoning)

    def _bounded(self, name: str, reasoning: Reasoning) -> ReasonOutput:
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
