"""Reason: the configured reasoner turns the observation into proposals.

Every outcome lands in the audit trail with the tokens it cost. Failures are sorted by what
a retry can do about them:

- transient (rate limit, overload, server error, timeout): a retryable `ReasonerUnavailable`
  application error, so Temporal's retry policy backs off and tries again;
- refused (bad request, authentication, permission): non-retryable `ReasonerRequestRejected`
  or `ReasonerAuthenticationFailed`; the run fails cleanly and nothing executes;
- an unreadable reply (after the reasoner's one corrective retry): returned as a
  `ReasoningFailure` with the raw replies, which the workflow escalates to a human.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._deps import Deps
from charter.notify.notifier import ExceptionNotice, deliver
from charter.reasoners import (
    ReasonerRejected,
    ReasonerUnavailable,
    UnparseableReply,
    reason_with,
)
from charter.storage import audit, runs
from charter.storage.audit_group import group_for
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

    @activity.defn(name="reason")
    async def reason(self, req: ReasonInput) -> ReasonOutput:
        name = self._reasoner.name
        try:
            reasoning = await reason_with(self._reasoner, req.observation, req.constitution)
        except UnparseableReply as exc:
            failure = ReasoningFailure(
                message=str(exc), problems=exc.problems, raw_replies=exc.raw_replies
            )
            output = ReasonOutput(reasoner=name, proposals=[], usage=exc.usage, failure=failure)
            await self._audit(req, "reasoning_failed", output.model_dump(mode="json"))
            return output
        except ReasonerRejected as exc:
            # Recorded once: a non-retryable error has no second attempt.
            await self._audit(
                req,
                "reasoning_failed",
                {"reasoner": name, "error": str(exc), "status": exc.status},
            )
            raise ApplicationError(
                str(exc),
                type=ErrorType.REASONER_AUTHENTICATION_FAILED
                if exc.authentication
                else ErrorType.REASONER_REQUEST_REJECTED,
                non_retryable=True,
            ) from None
        except ReasonerUnavailable as exc:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            activity.logger.warning(
                "reasoner unavailable (attempt %d): %s", activity.info().attempt, exc
            )
            raise ApplicationError(
                str(exc), type=ErrorType.REASONER_UNAVAILABLE, next_retry_delay=delay
            ) from None
        if len(reasoning.proposals) > MAX_PROPOSALS:
            # Gating some and dropping the rest would act on part of what the model asked
            # for; a human sees the whole reply instead, and nothing executes.
            problem = (
                f"the reply proposed {len(reasoning.proposals)} actions; "
                f"at most {MAX_PROPOSALS} are accepted per run"
            )
            failure = ReasoningFailure(message=problem, problems=[problem])
            output = ReasonOutput(
                reasoner=name, proposals=[], usage=reasoning.usage, failure=failure
            )
            await self._audit(req, "reasoning_failed", output.model_dump(mode="json"))
            return output
        output = ReasonOutput(reasoner=name, proposals=reasoning.proposals, usage=reasoning.usage)
        await self._audit(req, "proposed", output.model_dump(mode="json"))
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
            await audit.append(
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
