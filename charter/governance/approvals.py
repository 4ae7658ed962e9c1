"""Who may approve an escalated proposal, and when enough of them have.

Pure: imported by the workflow (its validator) and by the activities that re-check the
same rules against the database.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas import Decision, Verdict


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


def holds_roles(roles: Iterable[str], requirements: list[list[str]]) -> bool:
    held = set(roles)
    return all(held.intersection(options) for options in requirements)


def approvers(decisions: Iterable[Decision]) -> list[str]:
    """Distinct approvers, in the order they approved."""
    return list(dict.fromkeys(d.approver for d in decisions if d.outcome == "approve"))


def same_member(member_id: str, requested_by: str | None) -> bool:
    """Whether a member is the run's requester. `requested_by` is free text from the caller:
    compare it as a member id (trimmed, lower case) so "Sam" cannot approve sam's own run."""
    return requested_by is not None and requested_by.strip().lower() == member_id.strip().lower()
