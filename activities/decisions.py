"""Record a human decision, and the amendment it may carry, before the workflow acts on it.

The workflow's validator can only check what the workflow holds; this activity re-checks
against the database that the decision carries a statement signed with a key registered
for its member (bound to this run, proposal and parameters, fresh and never used before),
and that the approver is an active member with an approver role.
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
from charter.services import proofs
from charter.storage import audit_trail, constitution_versions, roster, runs
from charter.temporal.stages import record_time_to_decision
from schemas import DecisionReceipt, RecordDecisionInput
from schemas.errors import ErrorType


class DecisionActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier

    @staticmethod
    async def _shown_vendor(conn: asyncpg.Connection, req: RecordDecisionInput) -> str | None:
        """The vendor record the exception showed the approver, by id: an amendment binds to
        that record, not to its name."""
        exception = await runs.get_exception(conn, req.run.tenant_id, req.exception_id)
        observed = (exception or {}).get("context", {}).get("observed", {})
        vendor_id = (observed.get("vendor") or {}).get("vendor_id")
        return vendor_id if isinstance(vendor_id, str) else None

    @staticmethod
    async def _case(conn: asyncpg.Connection, req: RecordDecisionInput) -> approvals.Case:
        """The database's view of the proposal, for the rule book: the exception (open, not
        past its expiry), the approver's membership and roles, the run's requester and the
        decisions recorded. The workflow asks the same of its own state; this holds when the
        activity is called directly or races the expiry."""
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
                type=ErrorType.UNKNOWN_PROPOSAL,
                non_retryable=True,
            )
        status = approvals.AWAITING if row["status"] == "open" else row["status"]
        if status == approvals.AWAITING and row["expires_at"] <= datetime.now(UTC):
            status = "expired"
        roles = await roster.roles(conn, run.tenant_id, decision.approver)
        recorded = await runs.decisions(
            conn, run.tenant_id, run.workflow_id, req.proposal.proposal_id
        )
        return approvals.Case(
            tenant_id=run.tenant_id,
            proposal_id=req.proposal.proposal_id,
            status=status,
            verdict=req.verdict,
            approved_verdict=req.approved_verdict,
            decisions=[
                approvals.Ballot(a, "approve" if o == "approve" else "reject") for a, o in recorded
            ],
            approvers=frozenset({decision.approver} if approvals.is_approver(roles) else ()),
            roles={decision.approver: roles or []},
            requested_by=await runs.requested_by(conn, run.tenant_id, run.workflow_id),
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
        status = approvals.status_after(decision.outcome, count, required)
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
        if req.approved is not None and (
            req.approved_verdict is None or decision.outcome != "approve"
        ):
            # The workflow sends the edited parameters with their verdict, and only with an
            # approval: anything else is a malformed request, not a decision to judge.
            raise ApplicationError(
                "an edit needs an approval and the gate's verdict on the edited parameters",
                type=ErrorType.INVALID_DECISION,
                non_retryable=True,
            )
        required = approvals.required(req.verdict, req.approved_verdict)
        digest = runs.proposal_digest(approved)
        waited = None
        async with self._db.tenant(run.tenant_id) as conn:
            prior = await runs.get_decision(
                conn, run.tenant_id, run.workflow_id, proposal.proposal_id, decision.approver
            )
            if (
                prior is not None
                and prior["outcome"] == decision.outcome
                and prior["proposal_digest"] == digest
            ):
                # A retry of this activity after its transaction committed: the decision
                # is recorded, so report it instead of refusing it as a duplicate (the
                # workflow would otherwise refuse a decision the database holds).
                return await self._receipt(conn, req, prior, digest, required)
            try:
                statement = await proofs.check_new(
                    conn,
                    proofs.Binding(
                        tenant_id=run.tenant_id,
                        workflow_id=run.workflow_id,
                        run_id=run.run_id,
                        proposal_id=proposal.proposal_id,
                        digest=digest,
                    ),
                    decision,
                    datetime.now(UTC),
                )
            except proofs.ProofRefused as exc:
                raise ApplicationError(exc.message, type=exc.type, non_retryable=True) from None
            case = await self._case(conn, req)
            # A second decision by the same member is a duplicate whatever the exception's
            # status now, so that rule is asked first.
            refusal = approvals.duplicate(case, decision) or approvals.judge(
                case, decision, lambda: req.approved_verdict
            )
            if refusal is not None:
                raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True)
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
                await constitution_versions.lock_versions(conn, run.tenant_id)
                latest = await constitution_versions.get(conn, run.tenant_id)
                try:
                    if required > 1:
                        # The edited parameters may need a quorum the original did not.
                        raise AmendmentRefused(
                            f"this decision needs {required} approvers; one approver cannot "
                            "amend it away"
                        )
                    document = amend(
                        latest.document,
                        vendor_id=await self._shown_vendor(conn, req),
                        proposal=approved,
                        verdict=req.verdict,
                        request=decision.amendment,
                        approver=decision.approver,
                        exception_id=req.exception_id,
                        now=datetime.now(UTC),
                    )
                except AmendmentRefused as exc:
                    raise ApplicationError(
                        str(exc), type=ErrorType.AMENDMENT_REFUSED, non_retryable=True
                    ) from None
                saved = await constitution_versions.save(
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
                    statement=decision.statement,
                    signature=decision.signature,
                    nonce=statement.nonce,
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "decisions_nonce":
                    raise ApplicationError(
                        "decision refused: the statement's nonce was already used (a replay)",
                        type=ErrorType.INVALID_STATEMENT,
                        non_retryable=True,
                    ) from None
                raise ApplicationError(
                    f"{decision.approver!r} has already decided on {proposal.proposal_id}",
                    type=ErrorType.DUPLICATE_APPROVAL,
                    non_retryable=True,
                ) from None
            count = len(
                await runs.approvals(
                    conn, run.tenant_id, run.workflow_id, proposal.proposal_id, digest
                )
            )
            status = approvals.status_after(decision.outcome, count, required)
            if status != approvals.AWAITING:
                waited = await runs.close_exception(conn, run.tenant_id, req.exception_id, status)
            await audit_trail.append(
                conn,
                run.tenant_id,
                "decision",
                {
                    "exception_id": req.exception_id,
                    "proposal": proposal.model_dump(mode="json"),
                    "decision": decision.model_dump(mode="json"),
                    # The proof, verbatim: `charter audit verify` re-verifies its signature.
                    "statement": decision.statement,
                    "signature": decision.signature,
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
        if waited is not None:
            record_time_to_decision(status, waited)
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
