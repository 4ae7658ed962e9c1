"""Record a human decision, and the amendment it may carry, before the workflow acts on it.

The workflow's validator can only check what the workflow holds; this activity re-checks
against the database that the approver is an active member with an approver role.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._deps import Deps
from charter.governance import approvals
from charter.governance.amendments import AmendmentRefused, amend
from charter.notify.notifier import ExceptionNotice, deliver
from charter.runtime.faults import crash_point
from charter.storage import audit, constitutions, members, runs
from schemas import DecisionReceipt, RecordDecisionInput


class DecisionActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier

    @staticmethod
    async def _check_open(conn: asyncpg.Connection, req: RecordDecisionInput) -> None:
        """The database's view: the exception is still open, not past its expiry, and the
        approver did not request the run. The workflow checks the same from its own state;
        this holds when the activity is called directly or races the expiry."""
        run, decision = req.run, req.decision
        # Locked until commit: two decisions on one exception (two approvers at once, a
        # decision and the expiry) are serialised, so the second sees the first's outcome.
        row = await runs.lock_exception(conn, run.tenant_id, req.exception_id)
        if (
            row is None
            or row["workflow_id"] != run.workflow_id
            or row["proposal_id"] != req.proposal.proposal_id
        ):
            raise ApplicationError(
                f"no exception {req.exception_id} for proposal {req.proposal.proposal_id} of "
                "this run",
                type="UnknownProposal",
                non_retryable=True,
            )
        if row["status"] != "open":
            raise ApplicationError(
                f"{req.exception_id} is {row['status']}, not awaiting a decision",
                type="NotAwaitingDecision",
                non_retryable=True,
            )
        if row["expires_at"] <= datetime.now(UTC):
            raise ApplicationError(
                f"{req.exception_id} expired at {row['expires_at'].isoformat()}; nothing was decided",
                type="NotAwaitingDecision",
                non_retryable=True,
            )
        if decision.outcome == "approve" and approvals.same_member(
            decision.approver, await runs.requested_by(conn, run.tenant_id, run.workflow_id)
        ):
            raise ApplicationError(
                f"{decision.approver!r} requested this run and cannot approve its proposals",
                type="SelfApproval",
                non_retryable=True,
            )

    @staticmethod
    async def _receipt(
        conn: asyncpg.Connection,
        req: RecordDecisionInput,
        prior: dict[str, Any],
        digest: str,
        required: int,
    ) -> DecisionReceipt:
        run, decision, proposal = req.run, req.decision, req.proposal
        count = len(
            await runs.approvals(conn, run.tenant_id, run.workflow_id, proposal.proposal_id, digest)
        )
        status = "awaiting_decision"
        if decision.outcome == "reject":
            status = "rejected"
        elif count >= required:
            status = "approved"
        return DecisionReceipt(
            proposal_id=proposal.proposal_id,
            outcome=decision.outcome,
            approver=decision.approver,
            decided_at=prior["decided_at"],
            amendment_version=prior["amendment_version"],
            approvals=count,
            approvals_required=required,
            status=status,
        )

    @activity.defn(name="record_decision")
    async def record_decision(self, req: RecordDecisionInput) -> DecisionReceipt:
        run, decision, proposal = req.run, req.decision, req.proposal
        # What the approval is bound to: the edited parameters after an edit, else the proposal.
        approved = req.approved or proposal
        if req.approved is not None:
            if req.approved_verdict is None or decision.outcome != "approve":
                raise ApplicationError(
                    "an edit needs an approval and the gate's verdict on the edited parameters",
                    type="InvalidDecision",
                    non_retryable=True,
                )
            if req.approved_verdict.outcome == "deny":
                raise ApplicationError(
                    "the edited proposal is denied by the gate",
                    type="EditDenied",
                    non_retryable=True,
                )
        required = approvals.required(req.verdict, req.approved_verdict)
        digest = runs.proposal_digest(approved)
        async with self._db.tenant(run.tenant_id) as conn:
            prior = await runs.get_decision(
                conn, run.tenant_id, run.workflow_id, proposal.proposal_id, decision.approver
            )
            if prior is not None:
                if prior["outcome"] == decision.outcome and prior["proposal_digest"] == digest:
                    # A retry of this activity after its transaction committed: the decision
                    # is recorded, so report it instead of refusing it as a duplicate (the
                    # workflow would otherwise refuse a decision the database holds).
                    return await self._receipt(conn, req, prior, digest, required)
                raise ApplicationError(
                    f"{decision.approver!r} has already decided on {proposal.proposal_id}",
                    type="DuplicateApproval",
                    non_retryable=True,
                )
            await self._check_open(conn, req)
            roles = await members.roles(conn, run.tenant_id, decision.approver)
            if roles is None or not set(roles) & set(members.APPROVER_ROLES):
                raise ApplicationError(
                    f"{decision.approver!r} is not an authorised approver of {run.tenant_id!r}",
                    type="UnauthorisedApprover",
                    non_retryable=True,
                )
            requirements = approvals.role_requirements(req.verdict, req.approved_verdict)
            if not approvals.holds_roles(roles, requirements):
                raise ApplicationError(
                    f"{decision.approver!r} lacks a role this exception needs",
                    type="UnauthorisedApprover",
                    non_retryable=True,
                )
            if req.approved is not None and req.approved_verdict is not None:
                await runs.save_edit(
                    conn,
                    tenant_id=run.tenant_id,
                    workflow_id=run.workflow_id,
                    proposal=req.approved,
                    verdict=req.approved_verdict,
                    edited_by=decision.approver,
                )
            amendment_version = None
            if decision.outcome == "approve" and decision.amendment is not None:
                # Locked before reading: the amendment is the latest version plus one rule.
                await constitutions.lock_versions(conn, run.tenant_id)
                latest = await constitutions.get(conn, run.tenant_id)
                try:
                    if required > 1:
                        # The edited parameters may need a quorum the original did not.
                        raise AmendmentRefused(
                            f"this decision needs {required} approvers; one approver cannot "
                            "amend it away"
                        )
                    document = amend(
                        latest.document,
                        proposal=approved,
                        verdict=req.verdict,
                        request=decision.amendment,
                        approver=decision.approver,
                        exception_id=req.exception_id,
                        now=datetime.now(UTC),
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
            try:
                await runs.record_decision(
                    conn,
                    tenant_id=run.tenant_id,
                    workflow_id=run.workflow_id,
                    proposal_id=proposal.proposal_id,
                    approver=decision.approver,
                    outcome=decision.outcome,
                    reason=decision.reason,
                    digest=digest,
                    amendment_version=amendment_version,
                )
            except asyncpg.UniqueViolationError:
                raise ApplicationError(
                    f"{decision.approver!r} has already decided on {proposal.proposal_id}",
                    type="DuplicateApproval",
                    non_retryable=True,
                ) from None
            count = len(
                await runs.approvals(
                    conn, run.tenant_id, run.workflow_id, proposal.proposal_id, digest
                )
            )
            status = "awaiting_decision"
            if decision.outcome == "reject":
                status = "rejected"
            elif count >= required:
                status = "approved"
            if status != "awaiting_decision":
                await runs.close_exception(conn, run.tenant_id, req.exception_id, status)
            await audit.append(
                conn,
                run.tenant_id,
                "decision",
                {
                    "exception_id": req.exception_id,
                    "proposal": proposal.model_dump(mode="json"),
                    "decision": decision.model_dump(mode="json"),
                    # Proposed and approved parameters, recorded separately.
                    "proposed": proposal.model_dump(mode="json"),
                    "approved": approved.model_dump(mode="json"),
                    "approved_verdict": req.approved_verdict.model_dump(mode="json")
                    if req.approved_verdict
                    else None,
                    "approvals": count,
                    "approvals_required": required,
                    "status": status,
                    "amendment_version": amendment_version,
                },
                actor=f"member:{decision.approver}",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        crash_point("decision-recorded")
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
            approvals=count,
            approvals_required=required,
            status=status,
        )
