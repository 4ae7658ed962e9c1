"""What the database holds that lets an action execute: the act activity's first step.

Defence in depth: the act trusts no caller. An action executes on an `execute` verdict for
exactly these parameters that nothing since sent to a human, or on enough approvals of
exactly these parameters (an edit must be one the database holds, gated and not denied),
each proven by a signed statement, by members who still hold the roles the rules name, with
no rejection, no approval by the member who requested the run, and the exception closed as
approved.
"""

from __future__ import annotations

import asyncpg

from charter.crypto.anchors import TrustAnchors
from charter.governance import approvals
from charter.services import law_proofs, owner_anchor, proofs
from charter.storage import roster, runs
from schemas import (
    ApprovalAuthorisation,
    Authorisation,
    GateAuthorisation,
    Proposal,
    RunRef,
    Verdict,
)


class AuthorisationRefused(Exception):
    """The database holds no authorisation for the action; the message says what is missing."""


async def authorise(
    conn: asyncpg.Connection,
    run: RunRef,
    proposal: Proposal,
    anchors: TrustAnchors | None = None,
) -> Authorisation:
    """The authorisation for `proposal` of `run`, read in the caller's transaction. With
    trust anchors configured, an owner key in the database they do not list refuses it."""
    if anchors is not None:
        unanchored = await owner_anchor.unanchored_owner_keys(
            conn, run.tenant_id, anchors, development=True
        )
        if unanchored:
            raise AuthorisationRefused(f"act refused: {unanchored[0]}")
    stored = await runs.get_proposal(conn, run.tenant_id, run.workflow_id, proposal.proposal_id)
    if stored is None:
        raise AuthorisationRefused(
            f"act refused: no gate verdict recorded for {run.workflow_id}/{proposal.proposal_id}"
        )
    recorded, verdict = stored
    await _check_law(conn, run, verdict)
    digest = runs.proposal_digest(proposal)
    edited_verdict = None
    if runs.proposal_digest(recorded) != digest:
        edited_verdict = await _edited_verdict(conn, run, proposal.proposal_id, digest)
    elif verdict.outcome == "execute" and not await _sent_back(conn, run, proposal):
        return GateAuthorisation(verdict=verdict)
    if verdict.outcome == "deny":
        raise AuthorisationRefused("act refused: the gate denied this proposal")
    return await _approval(conn, run, proposal.proposal_id, digest, verdict, edited_verdict)


async def _check_law(conn: asyncpg.Connection, run: RunRef, verdict: Verdict) -> None:
    """The version the verdict was judged under and the one in force must both be law:
    the owner's, or an amendment its signed decision proves."""
    current = await conn.fetchval(
        "SELECT max(version) FROM charter.constitutions WHERE tenant_id = $1", run.tenant_id
    )
    try:
        await law_proofs.check_law(
            conn, run.tenant_id, sorted({verdict.constitution_version, current or 0} - {0})
        )
    except law_proofs.LawUnproven as exc:
        raise AuthorisationRefused(f"act refused: {exc}") from None


async def _edited_verdict(
    conn: asyncpg.Connection, run: RunRef, proposal_id: str, digest: str
) -> Verdict:
    """Approve-with-edit: the parameters must be an edit the database holds, judged by the
    gate and not denied; otherwise the caller changed what was judged."""
    edit = await runs.get_edit(conn, run.tenant_id, run.workflow_id, proposal_id, digest)
    if edit is None:
        raise AuthorisationRefused("act refused: the proposal differs from the one the gate judged")
    _, verdict = edit
    if verdict.outcome == "deny":
        raise AuthorisationRefused("act refused: the gate denied the edited proposal")
    return verdict


async def _sent_back(conn: asyncpg.Connection, run: RunRef, proposal: Proposal) -> bool:
    """An auto-execute verdict that an earlier attempt sent back to the humans (the facts,
    the law or a limit) authorises nothing by itself any more: it needs the approval."""
    exception_id = runs.exception_id_for(run.workflow_id, proposal.proposal_id)
    return await runs.get_exception(conn, run.tenant_id, exception_id) is not None


async def _approval(
    conn: asyncpg.Connection,
    run: RunRef,
    proposal_id: str,
    digest: str,
    verdict: Verdict,
    edited_verdict: Verdict | None,
) -> ApprovalAuthorisation:
    approvers = await _proven_approvers(conn, run, proposal_id, digest)
    required = approvals.required(verdict, edited_verdict)
    await _check_approvers(conn, run, proposal_id, approvers, required)
    requirements = approvals.role_requirements(verdict, edited_verdict)
    for approver in approvers:
        roles = await roster.roles(conn, run.tenant_id, approver) or []
        if not approvals.holds_roles(roles, requirements):
            raise AuthorisationRefused(f"act refused: {approver!r} lacks a role this action needs")
    return ApprovalAuthorisation(
        exception_id=await _approved_exception(conn, run, proposal_id),
        approvers=approvers,
        approvals_required=required,
        verdict=verdict,
        edited_verdict=edited_verdict,
    )


async def _proven_approvers(
    conn: asyncpg.Connection, run: RunRef, proposal_id: str, digest: str
) -> list[str]:
    """The approvers of exactly these parameters whose stored statements verify: a decision
    row written with the application role's credentials alone proves nothing."""
    approvers = await runs.approvals(conn, run.tenant_id, run.workflow_id, proposal_id, digest)
    exception = await runs.latest_exception(conn, run.tenant_id, run.workflow_id, proposal_id)
    if exception is None:
        return []
    # Approvals count for the exception they were given on: the last one opened.
    binding = proofs.Binding.of_run(run, proposal_id, digest)
    proven = await proofs.proven_approvers(conn, binding, exception["opened_at"])
    return [a for a in approvers if a in proven]


async def _check_approvers(
    conn: asyncpg.Connection, run: RunRef, proposal_id: str, approvers: list[str], required: int
) -> None:
    """No rejection, no approval by the run's requester, and the quorum reached."""
    rejected_by = await runs.rejections(conn, run.tenant_id, run.workflow_id, proposal_id)
    if rejected_by:
        raise AuthorisationRefused(f"act refused: rejected by {', '.join(rejected_by)}")
    requester = await runs.requested_by(conn, run.tenant_id, run.workflow_id)
    if any(approvals.same_member(a, requester) for a in approvers):
        raise AuthorisationRefused(
            "act refused: an approval is by the member who requested the run"
        )
    if not approvers:
        raise AuthorisationRefused(
            "act refused: no recorded approval of this proposal by a currently authorised member"
        )
    if len(approvers) < required:
        raise AuthorisationRefused(
            f"act refused: {len(approvers)} of {required} required approvals recorded"
        )


async def _approved_exception(conn: asyncpg.Connection, run: RunRef, proposal_id: str) -> str:
    """The exception itself must be closed as approved: an approval row beside a reject, or
    on an expired exception, is no authorisation."""
    exception = await runs.latest_exception(conn, run.tenant_id, run.workflow_id, proposal_id)
    if exception is None or exception["status"] != "approved":
        status = exception["status"] if exception else "missing"
        raise AuthorisationRefused(f"act refused: the exception is {status}, not approved")
    return str(exception["exception_id"])
