"""Re-judging a proposal at the moment of execution, on facts re-read just now.

The verdict in the workflow judged one observation under the version pinned at the start of
the run; by the time the money moves, the books and the law may both have changed (a model
that stalls its reply decides how long). Before acting, the proposal is judged again on the
fresh facts under the pinned version and under the version in force now, and proceeds only
if both allow it. Pure: the act activity supplies the facts, read under row locks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from charter.governance import gate
from charter.governance.facts import facts_for
from schemas import Constitution, Observation, Proposal, Verdict

#: The records whose facts an approval was shown and covers.
_RECORDS = ("invoice", "vendor", "campaign", "payroll")


@dataclass(frozen=True)
class Rejudgement:
    outcome: Literal["proceed", "decide", "refuse"]
    """`decide`: back to the humans as an exception; `refuse`: not executed, for good."""
    reason: str
    verdicts: list[Verdict]
    changed: dict[str, Any] = field(default_factory=dict)


def _within(value: Any, now: Any, fraction: Decimal | None) -> bool:
    """Whether a numeric fact moved by at most `fraction` of what was shown."""
    numbers = (int, float, Decimal)
    if fraction is None or isinstance(value, bool) or isinstance(now, bool):
        return False
    if not isinstance(value, numbers) or not isinstance(now, numbers):
        return False
    shown, fresh = Decimal(str(value)), Decimal(str(now))
    return abs(fresh - shown) <= abs(shown) * fraction


def shown_changes(
    shown: dict[str, Any], fresh: dict[str, Any], tolerance: Mapping[str, Decimal] | None = None
) -> dict[str, Any]:
    """Record fields an approver was shown that no longer hold: `{"vendor.verified":
    {"approved": true, "now": false}}`. A record that disappeared counts as changed. A
    numeric field the approvers' `tolerance` names may move within it and still holds."""
    changed: dict[str, Any] = {}
    allowed = tolerance or {}
    for record in _RECORDS:
        before, after = shown.get(record) or {}, fresh.get(record) or {}
        for key, value in before.items():
            name = f"{record}.{key}"
            now = after.get(key)
            if now != value and not _within(value, now, allowed.get(name)):
                changed[name] = {"approved": value, "now": now}
    return changed


def _describe(verdict: Verdict) -> dict[str, Any]:
    return {
        "constitution_version": verdict.constitution_version,
        "outcome": verdict.outcome,
        "explanation": verdict.explanation,
        "why": {m.rule_id: m.why for m in verdict.matched},
    }


def rejudge(
    pinned: Constitution,
    current: Constitution,
    proposal: Proposal,
    fresh: Observation,
    *,
    judged: Verdict,
    shown: dict[str, Any] | None,
    tolerance: Mapping[str, Decimal] | None = None,
) -> Rejudgement:
    """`judged`: the verdict the workflow recorded. `shown`: the facts an approval was given
    on (the exception's `observed`), or None for an autonomous execution. `tolerance`: how
    far the approvers let which facts move (what every approver's statement allows)."""
    laws = [pinned] if current.version == pinned.version else [pinned, current]
    verdicts = [gate.evaluate(law, proposal, fresh, with_limits=False) for law in laws]
    denied = [v for v in verdicts if v.outcome == "deny"]
    if denied:
        return Rejudgement(
            "refuse",
            "; ".join(f"v{v.constitution_version}: {v.explanation}" for v in denied),
            verdicts,
            {"judged": _describe(judged), "now": [_describe(v) for v in verdicts]},
        )
    if shown is None:
        # The citations were checked when the gate judged; the current version's rule ids
        # are not the reasoner's to know, so they do not hold an execution back.
        held = [
            v
            for v in verdicts
            if v.outcome != "execute" and not set(v.causes) <= {"citation_mismatch"}
        ]
        if held:
            return Rejudgement(
                "decide",
                "re-judged at execution: "
                + "; ".join(f"v{v.constitution_version}: {v.explanation}" for v in held),
                verdicts,
                {"judged": _describe(judged), "now": [_describe(v) for v in verdicts]},
            )
        return Rejudgement("proceed", "", verdicts)
    changed = shown_changes(shown, facts_for(proposal, fresh), tolerance)
    if changed:
        # The approval covered exactly the facts it was shown: the humans decide again, on
        # what holds now (an approval of the old facts is no approval of these).
        return Rejudgement(
            "decide",
            "the facts the approval was given on have changed: "
            + ", ".join(f"{k} {v['approved']!r} -> {v['now']!r}" for k, v in changed.items()),
            verdicts,
            changed,
        )
    return Rejudgement("proceed", "", verdicts)
