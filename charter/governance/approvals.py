"""The rule book for decisions: may this member make this decision on this proposal now?

One answer for every place that asks: the workflow's validator (from its own state), the
`record_decision` activity (from what the database says), and the Slack app (before it opens
a modal). Each feeds a `Case` of what it knows; a rule whose facts the caller does not have
(`None`) is left to the callers that do. Pure, so the workflow may call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas import Decision, ProposalStatus, Verdict
from schemas.errors import ErrorType

AWAITING: ProposalStatus = "awaiting_decision"

#: The member roles that may decide at all; the matched rules may ask for more.
APPROVER_ROLES = ("approver", "owner")


@dataclass(frozen=True)
class Refusal:
    """Why a decision may not be made: a catalogued error type and a one-line message."""

    type: ErrorType
    message: str


@dataclass(frozen=True)
class Ballot:
    """A decision already recorded on the proposal."""

    approver: str
    outcome: Literal["approve", "reject"]


@dataclass(frozen=True)
class Case:
    """What the asker knows about the proposal and its tenant, now."""

    tenant_id: str
    proposal_id: str
    status: str
    """The proposal's status; only `awaiting_decision` takes decisions."""
    verdict: Verdict | None
    """The gate's verdict on the proposal as proposed."""
    approved_verdict: Verdict | None = None
    """After an edit: the gate's verdict on the edited parameters approvals are bound to."""
    decisions: Sequence[Ballot] = ()
    in_flight: bool = False
    """Another decision on the proposal is being recorded."""
    approvers: frozenset[str] | None = None
    """Members who may approve for the tenant; None: not known here."""
    roles: Mapping[str, Sequence[str]] | None = None
    """Each approver's roles; None (or empty, as runs started before roles existed): not known."""
    requested_by: str | None = None
    """Who requested the run; None: nobody, or not known here."""


def required(*verdicts: Verdict | None) -> int:
    """The quorum: the largest any of the verdicts (original, edited) asks for."""
    return max([v.approvals_required for v in verdicts if v is not None] + [1])


def role_requirements(*verdicts: Verdict | None) -> list[list[str]]:
    """Role lists an approver must satisfy: at least one role of each list."""
    out: list[list[str]] = []
    for v in verdicts:
        if v is not None:
            out.extend(r for r in v.approver_roles if r not in out)
    return out


def roles_text(requirements: list[list[str]], *, either: str = "/", both: str = " and ") -> str:
    return both.join(either.join(options) for options in requirements)


def is_approver(roles: Iterable[str] | None) -> bool:
    """Whether a member with these roles (None: not an active member) may decide at all."""
    return roles is not None and bool(set(roles) & set(APPROVER_ROLES))


def status_after(outcome: str, approvals: int, required: int) -> ProposalStatus:
    """The proposal's status once a decision is recorded: any reject rejects; approvals of
    the current parameters approve once they reach the quorum."""
    if outcome == "reject":
        return "rejected"
    return "approved" if approvals >= required else AWAITING


def holds_roles(roles: Iterable[str], requirements: list[list[str]]) -> bool:
    held = set(roles)
    return all(held.intersection(options) for options in requirements)


def approvers(decisions: Iterable[Decision | Ballot]) -> list[str]:
    """Distinct approvers, in the order they approved."""
    return list(dict.fromkeys(d.approver for d in decisions if d.outcome == "approve"))


def quorum_met(decisions: Iterable[Decision | Ballot], *verdicts: Verdict | None) -> bool:
    """Whether enough distinct approvers have approved."""
    return len(approvers(decisions)) >= required(*verdicts)


def same_member(member_id: str, requested_by: str | None) -> bool:
    """Whether a member is the run's requester. `requested_by` is free text from the caller:
    compare it as a member id (trimmed, lower case) so "Sam" cannot approve sam's own run."""
    return requested_by is not None and requested_by.strip().lower() == member_id.strip().lower()


Regate = Callable[[], Verdict | None]


def judge(case: Case, decision: Decision, regate: Regate | None = None) -> Refusal | None:
    """None if `decision` may be made on the proposal now, else the first rule it breaks.

    `regate` gives the gate's verdict on the edited parameters when the decision carries an
    edit (the workflow gates them itself; the activity receives the verdict): only called
    once every other rule holds.
    """
    member = decision.approver
    if case.status != AWAITING or case.in_flight:
        return Refusal(
            ErrorType.NOT_AWAITING_DECISION,
            f"proposal {case.proposal_id} is not awaiting a decision (status: {case.status})",
        )
    if case.approvers is not None and member not in case.approvers:
        return Refusal(
            ErrorType.UNAUTHORISED_APPROVER,
            f"{member!r} is not an authorised approver for tenant {case.tenant_id!r}",
        )
    # `requested_by` is free text from the caller; "Sam" or " sam" is still sam.
    if same_member(member, case.requested_by):
        return Refusal(
            ErrorType.SELF_APPROVAL,
            f"{member!r} requested this run and cannot approve its proposals",
        )
    if refusal := duplicate(case, decision):
        return refusal
    requirements = role_requirements(case.verdict, case.approved_verdict)
    if requirements and case.roles and not holds_roles(case.roles.get(member, []), requirements):
        return Refusal(
            ErrorType.UNAUTHORISED_APPROVER,
            f"{member!r} lacks a role this exception needs ({roles_text(requirements)})",
        )
    return _judge_edit(case, decision, regate)


def duplicate(case: Case, decision: Decision) -> Refusal | None:
    """One decision per member per proposal. Also asked on its own by the database's re-check,
    first: a member's second decision is a duplicate even once the exception has closed."""
    if any(d.approver == decision.approver for d in case.decisions):
        return Refusal(
            ErrorType.DUPLICATE_APPROVAL,
            f"{decision.approver!r} has already decided on proposal {case.proposal_id}",
        )
    return None


def _judge_edit(case: Case, decision: Decision, regate: Regate | None) -> Refusal | None:
    """Edits: only the first approval may change the parameters, and the gate judges them."""
    if decision.edit is None:
        bound = case.approved_verdict
    else:
        if decision.outcome != "approve":
            return Refusal(
                ErrorType.INVALID_DECISION,
                "invalid decision: edit: only an approval can edit the parameters",
            )
        if approvers(case.decisions):
            return Refusal(
                ErrorType.EDIT_AFTER_APPROVAL,
                f"proposal {case.proposal_id} already has approvals of its current "
                "parameters; an edit must come with the first approval",
            )
        bound = regate() if regate is not None else None
        if bound is None:
            return Refusal(
                ErrorType.INVALID_DECISION,
                "an edit needs an approval and the gate's verdict on the edited parameters",
            )
    if bound is not None and bound.outcome == "deny":
        return Refusal(
            ErrorType.EDIT_DENIED,
            f"the edited proposal is denied by the gate: {bound.explanation}",
        )
    return None
