"""Record a human decision, and the amendment it may carry, before the workflow acts on it.

The workflow's validator can only check what the workflow holds; this activity re-checks
against the database that the decision carries a statement signed with a key registered
for its member (bound to this run, proposal and parameters, fresh and never used before),
and that the approver is an active member with an approver role. In named steps, in one
transaction: verify the proof, judge the decision by the rule book, record it (with the
edit and the amendment it carries), then tell the chat once committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio import activity

from activities._audit import record
from activities._deps import Deps
from activities._notices import notify
from charter.governance import approvals
from charter.governance.amendments import AmendmentRefused, amend
from charter.runtime.faults import crash_point
from charter.services import proofs
from charter.storage import constitution_versions, roster, runs
from charter.temporal.errors import CatalogueError
from charter.temporal.stages import record_time_to_decision
from schemas import DecisionReceipt, DecisionStatement, ProposalStatus, RecordDecisionInput
from schemas.errors import ErrorType


@dataclass(frozen=True)
class Tally:
    """Where the proposal stands once the decision is recorded."""

    approvals: int
    required: int
    status: ProposalStatus
    amendment_version: int | None = None


class DecisionActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier

    @activity.defn(name="record_decision")
    async def record_decision(self, req: RecordDecisionInput) -> DecisionReceipt:
        _check_edit(req)
        required = approvals.required(req.verdict, req.approved_verdict)
        # What the approval is bound to: the edited parameters after an edit, else the proposal.
        digest = runs.proposal_digest(req.approved or req.proposal)
        async with self._db.tenant(req.run.tenant_id) as conn:
            earlier = await _recorded_before(conn, req, digest, required)
            if earlier is not None:
                return earlier
            statement = await _verify_proof(conn, req, digest)
            await _judge(conn, req)
            tally, waited = await _record(conn, req, digest, required, statement)
        crash_point("decision-recorded")
        if waited is not None:
            record_time_to_decision(tally.status, waited)
        # Committed: update the card with the outcome, who decided and when (or "1 of 2").
        await notify(self._notifier, "decided", req.run, req.exception_id)
        return _receipt(req, datetime.now(UTC), tally)


def _check_edit(req: RecordDecisionInput) -> None:
    """The workflow sends the edited parameters with their verdict, and only with an
    approval: anything else is a malformed request, not a decision to judge."""
    if req.approved is not None and (
        req.approved_verdict is None or req.decision.outcome != "approve"
    ):
        raise CatalogueError(
            ErrorType.INVALID_DECISION,
            "an edit needs an approval and the gate's verdict on the edited parameters",
        )


async def _recorded_before(
    conn: asyncpg.Connection, req: RecordDecisionInput, digest: str, required: int
) -> DecisionReceipt | None:
    """A retry of this activity after its transaction committed: the decision is recorded,
    so it is reported instead of refused as a duplicate (the workflow would otherwise refuse
    a decision the database holds). None when this decision is not recorded yet."""
    run, decision = req.run, req.decision
    prior = await runs.get_decision(
        conn, run.tenant_id, run.workflow_id, req.proposal.proposal_id, decision.approver
    )
    if prior is None or prior["outcome"] != decision.outcome or prior["proposal_digest"] != digest:
        return None
    tally = await _tally(conn, req, digest, required, prior["amendment_version"])
    return _receipt(req, prior["decided_at"], tally)


async def _verify_proof(
    conn: asyncpg.Connection, req: RecordDecisionInput, digest: str
) -> DecisionStatement:
    """The decision's signed statement, verified against its member's key and bound to this
    run, proposal and parameters."""
    binding = proofs.Binding.of_run(req.run, req.proposal.proposal_id, digest)
    try:
        return await proofs.check_new(conn, binding, req.decision, datetime.now(UTC))
    except proofs.ProofRefused as exc:
        raise CatalogueError(exc.type, exc.message) from None


async def _judge(conn: asyncpg.Connection, req: RecordDecisionInput) -> None:
    """The rule book over the database's view of the proposal. A second decision by the
    same member is a duplicate whatever the exception's status now, so that rule is asked
    first."""
    case = await _case(conn, req)
    refusal = approvals.duplicate(case, req.decision) or approvals.judge(
        case, req.decision, lambda: req.approved_verdict
    )
    if refusal is not None:
        raise CatalogueError(refusal.type, refusal.message)


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
        raise CatalogueError(
            ErrorType.UNKNOWN_PROPOSAL,
            f"no exception {req.exception_id} for proposal {req.proposal.proposal_id} of this run",
        )
    status = approvals.AWAITING if row["status"] == "open" else row["status"]
    if status == approvals.AWAITING and row["expires_at"] <= datetime.now(UTC):
        status = "expired"
    roles = await roster.roles(conn, run.tenant_id, decision.approver)
    recorded = await runs.decisions(conn, run.tenant_id, run.workflow_id, req.proposal.proposal_id)
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


async def _record(
    conn: asyncpg.Connection,
    req: RecordDecisionInput,
    digest: str,
    required: int,
    statement: DecisionStatement,
) -> tuple[Tally, timedelta | None]:
    """The edit, the amendment and the decision, the exception closed once decided, and the
    `decision` entry; with how long the exception waited when this decision closed it."""
    run, decision = req.run, req.decision
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
        amendment_version = await _amend(conn, req, required)
    await _insert_decision(conn, req, digest, amendment_version, statement.nonce)
    tally = await _tally(conn, req, digest, required, amendment_version)
    waited = None
    if tally.status != approvals.AWAITING:
        waited = await runs.close_exception(conn, run.tenant_id, req.exception_id, tally.status)
    await _audit(conn, req, tally)
    return tally, waited


async def _amend(conn: asyncpg.Connection, req: RecordDecisionInput, required: int) -> int:
    """The new constitution version the approval's amendment makes: the latest version plus
    one narrowly scoped rule."""
    run, decision = req.run, req.decision
    assert decision.amendment is not None
    # Locked before reading: the amendment is the latest version plus one rule.
    await constitution_versions.lock_versions(conn, run.tenant_id)
    latest = await constitution_versions.get(conn, run.tenant_id)
    try:
        if required > 1:
            # The edited parameters may need a quorum the original did not.
            raise AmendmentRefused(
                f"this decision needs {required} approvers; one approver cannot amend it away"
            )
        document = amend(
            latest.document,
            vendor_id=await _shown_vendor(conn, req),
            proposal=req.approved or req.proposal,
            verdict=req.verdict,
            request=decision.amendment,
            approver=decision.approver,
            exception_id=req.exception_id,
            now=datetime.now(UTC),
        )
    except AmendmentRefused as exc:
        raise CatalogueError(ErrorType.AMENDMENT_REFUSED, str(exc)) from None
    saved = await constitution_versions.save(
        conn,
        run.tenant_id,
        document,
        source=f"amendment from {req.exception_id}",
        created_by=decision.approver,
        note=f"Amendment approved by {decision.approver}: {decision.reason}",
        amendment=True,
    )
    return saved.version


async def _shown_vendor(conn: asyncpg.Connection, req: RecordDecisionInput) -> str | None:
    """The vendor record the exception showed the approver, by id: an amendment binds to
    that record, not to its name."""
    exception = await runs.get_exception(conn, req.run.tenant_id, req.exception_id)
    observed = (exception or {}).get("context", {}).get("observed", {})
    vendor_id = (observed.get("vendor") or {}).get("vendor_id")
    return vendor_id if isinstance(vendor_id, str) else None


async def _insert_decision(
    conn: asyncpg.Connection,
    req: RecordDecisionInput,
    digest: str,
    amendment_version: int | None,
    nonce: str,
) -> None:
    run, decision = req.run, req.decision
    try:
        await runs.record_decision(
            conn,
            tenant_id=run.tenant_id,
            workflow_id=run.workflow_id,
            proposal_id=req.proposal.proposal_id,
            approver=decision.approver,
            outcome=decision.outcome,
            reason=decision.reason,
            digest=digest,
            amendment_version=amendment_version,
            statement=decision.statement,
            signature=decision.signature,
            nonce=nonce,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "decisions_nonce":
            raise CatalogueError(
                ErrorType.INVALID_STATEMENT,
                "decision refused: the statement's nonce was already used (a replay)",
            ) from None
        raise CatalogueError(
            ErrorType.DUPLICATE_APPROVAL,
            f"{decision.approver!r} has already decided on {req.proposal.proposal_id}",
        ) from None


async def _tally(
    conn: asyncpg.Connection,
    req: RecordDecisionInput,
    digest: str,
    required: int,
    amendment_version: int | None,
) -> Tally:
    run = req.run
    count = len(
        await runs.approvals(conn, run.tenant_id, run.workflow_id, req.proposal.proposal_id, digest)
    )
    status = approvals.status_after(req.decision.outcome, count, required)
    return Tally(count, required, status, amendment_version)


async def _audit(conn: asyncpg.Connection, req: RecordDecisionInput, tally: Tally) -> None:
    decision, proposal = req.decision, req.proposal
    snapshot = {
        "exception_id": req.exception_id,
        "proposal": proposal.model_dump(mode="json"),
        "decision": decision.model_dump(mode="json"),
        # The proof, verbatim: `charter audit verify` re-verifies its signature.
        "statement": decision.statement,
        "signature": decision.signature,
        # Proposed and approved parameters, recorded separately.
        "proposed": proposal.model_dump(mode="json"),
        "approved": (req.approved or proposal).model_dump(mode="json"),
        "approved_verdict": req.approved_verdict.model_dump(mode="json")
        if req.approved_verdict
        else None,
        "approvals": tally.approvals,
        "approvals_required": tally.required,
        "status": tally.status,
        "amendment_version": tally.amendment_version,
    }
    await record(conn, req.run, "decision", snapshot, actor=f"member:{decision.approver}")


def _receipt(req: RecordDecisionInput, decided_at: datetime, tally: Tally) -> DecisionReceipt:
    return DecisionReceipt(
        proposal_id=req.proposal.proposal_id,
        outcome=req.decision.outcome,
        approver=req.decision.approver,
        decided_at=decided_at,
        amendment_version=tally.amendment_version,
        approvals=tally.approvals,
        approvals_required=tally.required,
        status=tally.status,
    )
