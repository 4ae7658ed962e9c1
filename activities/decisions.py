"""Record a human decision, and the amendment it may carry, before the workflow acts on it.

The workflow's validator can only check what the workflow holds; this activity re-checks
against the database that the approver is an active member with an approver role.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._deps import Deps
from charter.amendments import AmendmentRefused, amend
from charter.notifier import ExceptionNotice, deliver
from charter.storage import audit, constitutions, members, runs
from schemas import DecisionReceipt, RecordDecisionInput


class DecisionActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier

    @activity.defn(name="record_decision")
    async def record_decision(self, req: RecordDecisionInput) -> DecisionReceipt:
        run, decision, proposal = req.run, req.decision, req.proposal
        async with self._db.tenant(run.tenant_id) as conn:
            if not await members.is_approver(conn, run.tenant_id, decision.approver):
                raise ApplicationError(
                    f"{decision.approver!r} is not an authorised approver of {run.tenant_id!r}",
                    type="UnauthorisedApprover",
                    non_retryable=True,
                )
            amendment_version = None
            if decision.outcome == "approve" and decision.amendment is not None:
                latest = await constitutions.get(conn, run.tenant_id)
                try:
                    document = amend(
                        latest.document,
                        proposal=proposal,
                        verdict=req.verdict,
                        request=decision.amendment,
                        approver=decision.approver,
                        exception_id=req.exception_id,
                    )
                except AmendmentRefused as exc:
                    raise ApplicationError(
                        str(exc), type="AmendmentRefused", non_retryable=True
                    ) from None
                saved = await constitutions.save(
                    conn,
                    run.tenant_id,
                    document,
                    source=f"amendment from {req.exception_id}",
                    created_by=decision.approver,
                    note=f"Amendment approved by {decision.approver}: {decision.reason}",
                )
                amendment_version = saved.version
            await runs.record_decision(
                conn,
                tenant_id=run.tenant_id,
                workflow_id=run.workflow_id,
                proposal_id=proposal.proposal_id,
                approver=decision.approver,
                outcome=decision.outcome,
                reason=decision.reason,
                digest=runs.proposal_digest(proposal),
                amendment_version=amendment_version,
            )
            await runs.close_exception(
                conn,
                run.tenant_id,
                req.exception_id,
                "approved" if decision.outcome == "approve" else "rejected",
            )
            await audit.append(
                conn,
                run.tenant_id,
                "decision",
                {
                    "exception_id": req.exception_id,
                    "proposal": proposal.model_dump(mode="json"),
                    "decision": decision.model_dump(mode="json"),
                    "amendment_version": amendment_version,
                },
                actor=f"member:{decision.approver}",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        # Committed: update the card with the outcome, who decided and when (or "1 of 2").
        await deliver(
            self._notifier,
            ExceptionNotice(
                kind="decided",
                tenant_id=run.tenant_id,
                exception_id=req.exception_id,
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                at=activity.info().current_attempt_scheduled_time,
            ),
        )
        return DecisionReceipt(
            proposal_id=proposal.proposal_id,
            outcome=decision.outcome,
            approver=decision.approver,
            decided_at=datetime.now(UTC),
            amendment_version=amendment_version,
        )
