"""Calibration: is a reasoner's stated confidence worth what it claims?

Confidence is the model's claim. Each proposal's confidence is set beside its outcome
(auto-executed, approved, edited, rejected, expired, denied, pending) and, per agent and
action type, stated confidence is compared with the rate at which humans agreed. Only human
decisions measure agreement: an auto-executed proposal was never reviewed, a denied one
never reached a human, an expired one got no answer.

The suggested threshold is the lowest confidence at which the proposals at or above it were
approved at least `target` of the time, over at least `min_decisions` decisions; the
Wilson lower bound says how far that rate can be trusted. It is a suggestion for the humans
who amend the constitution, never applied automatically.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["auto_executed", "approved", "edited", "rejected", "expired", "denied", "pending"]
#: Outcomes that carry a human's judgement of the proposal as proposed. `edited` (approved
#: after changing the proposal) counts as disagreement; the decision contract does not
#: offer edits yet, so it does not occur today.
AGREED: frozenset[str] = frozenset({"approved"})
DISAGREED: frozenset[str] = frozenset({"rejected", "edited"})

BIN_EDGES = [i / 10 for i in range(11)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProposalOutcome(_Model):
    agent: str
    action: str
    confidence: float = Field(ge=0.0, le=1.0)
    outcome: Outcome
    amended: bool = False

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> ProposalOutcome:
        verdict, decision = r["verdict"], r["decision"]
        outcome: Outcome
        if verdict == "execute":
            outcome = "auto_executed"
        elif verdict == "deny":
            outcome = "denied"
        elif decision == "approve":
            outcome = "approved"
        elif decision == "reject":
            outcome = "rejected"
        elif r["exception_status"] == "expired":
            outcome = "expired"
        else:
            outcome = "pending"
        return cls(
            agent=r["agent"],
            action=r["action"],
            confidence=r["confidence"],
            outcome=outcome,
            amended=bool(r["amended"]),
        )


class CalibrationBin(_Model):
    lower: float
    upper: float
    proposals: int
    decided: int
    agreed: int
    mean_confidence: float | None
    agreement: float | None
    """Share of human decisions in this bin that approved the proposal as proposed."""


class ThresholdSuggestion(_Model):
    min_confidence: float | None
    decisions: int
    agreement: float | None
    lower_bound: float | None
    note: str


class CalibrationGroup(_Model):
    agent: str
    action: str
    counts: dict[str, int]
    bins: list[CalibrationBin]
    suggestion: ThresholdSuggestion


class CalibrationReport(_Model):
    tenant_id: str
    target: float
    min_decisions: int
    groups: list[CalibrationGroup]


def wilson_lower_bound(agreed: int, n: int, z: float = 1.96) -> float:
    """Lower end of the 95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0
    p = agreed / n
    denominator = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denominator)


def _bins(rows: list[ProposalOutcome]) -> list[CalibrationBin]:
    out = []
    for i, (lower, upper) in enumerate(itertools.pairwise(BIN_EDGES)):
        last = i == len(BIN_EDGES) - 2
        inside = [r for r in rows if lower <= r.confidence < upper or (last and r.confidence == 1)]
        decided = [r for r in inside if r.outcome in AGREED | DISAGREED]
        agreed = sum(r.outcome in AGREED for r in decided)
        out.append(
            CalibrationBin(
                lower=lower,
                upper=upper,
                proposals=len(inside),
                decided=len(decided),
                agreed=agreed,
                mean_confidence=sum(r.confidence for r in decided) / len(decided)
                if decided
                else None,
                agreement=agreed / len(decided) if decided else None,
            )
        )
    return out


def _no_threshold(decisions: int, note: str) -> ThresholdSuggestion:
    """No threshold to suggest, and why."""
    return ThresholdSuggestion(
        min_confidence=None, decisions=decisions, agreement=None, lower_bound=None, note=note
    )


def suggest_threshold(
    rows: list[ProposalOutcome], target: float, min_decisions: int
) -> ThresholdSuggestion:
    decided = sorted(
        (r for r in rows if r.outcome in AGREED | DISAGREED), key=lambda r: r.confidence
    )
    if len(decided) < min_decisions:
        return _no_threshold(
            len(decided), f"not enough human decisions ({len(decided)} < {min_decisions})"
        )
    for candidate in sorted({r.confidence for r in decided}):
        above = [r for r in decided if r.confidence >= candidate]
        if len(above) < min_decisions:
            break
        agreed = sum(r.outcome in AGREED for r in above)
        if agreed / len(above) >= target:
            return ThresholdSuggestion(
                min_confidence=candidate,
                decisions=len(above),
                agreement=agreed / len(above),
                lower_bound=wilson_lower_bound(agreed, len(above)),
                note=f"humans approved {agreed} of {len(above)} at or above {candidate:.2f}",
            )
    return _no_threshold(
        len(decided),
        f"no confidence level reaches {target:.0%} agreement over {min_decisions}+ decisions",
    )


def report(
    tenant_id: str, rows: list[ProposalOutcome], *, target: float = 0.9, min_decisions: int = 5
) -> CalibrationReport:
    grouped: dict[tuple[str, str], list[ProposalOutcome]] = defaultdict(list)
    for r in rows:
        grouped[(r.agent, r.action)].append(r)
    groups = []
    for (agent, action), items in sorted(grouped.items()):
        counts: dict[str, int] = defaultdict(int)
        for r in items:
            counts[r.outcome] += 1
        groups.append(
            CalibrationGroup(
                agent=agent,
                action=action,
                counts=dict(sorted(counts.items())),
                bins=_bins(items),
                suggestion=suggest_threshold(items, target, min_decisions),
            )
        )
    return CalibrationReport(
        tenant_id=tenant_id, target=target, min_decisions=min_decisions, groups=groups
    )


def plot(calibration: CalibrationReport, path: Path) -> Path:
    """A reliability diagram: stated confidence against human agreement, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    try:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        for group in calibration.groups:
            points = [
                (b.mean_confidence, b.agreement, 30 + 20 * b.decided)
                for b in group.bins
                if b.mean_confidence is not None and b.agreement is not None
            ]
            if not points:
                continue
            xs, ys, sizes = (list(v) for v in zip(*points, strict=True))
            (line,) = ax.plot(xs, ys, marker="o", label=f"{group.agent} · {group.action}")
            ax.scatter(xs, ys, s=sizes, color=line.get_color(), alpha=0.4)
            threshold = group.suggestion.min_confidence
            if threshold is not None:
                ax.axvline(threshold, color=line.get_color(), linestyle=":", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("stated confidence")
        ax.set_ylabel("human agreement (approved as proposed)")
        ax.set_title(
            f"Calibration · {calibration.tenant_id} (dotted: suggested thresholds, "
            f"target {calibration.target:.0%})",
            fontsize=10,
        )
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
