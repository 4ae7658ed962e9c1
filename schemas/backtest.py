"""A backtest: recorded proposals replayed through a candidate constitution."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from schemas.frozen import FrozenModel
from schemas.verdict import EscalationCause, Outcome

Behaviour = Literal["auto", "escalated", "denied"]

#: How an outcome reads to a founder: `execute` means it would have run on its own.
BEHAVIOUR: dict[Outcome, Behaviour] = {"execute": "auto", "escalate": "escalated", "deny": "denied"}


class BacktestCase(FrozenModel):
    """One recorded proposal: what the gate said then, what the candidate says now."""

    workflow_id: str
    proposal_id: str
    occurred_at: str
    action: str
    counterparty: str | None
    reference: str | None
    amount: Decimal | None
    recorded_version: int
    recorded: Behaviour
    candidate: Behaviour
    recorded_causes: list[EscalationCause]
    candidate_causes: list[EscalationCause]
    candidate_rules: list[str]
    """Rules of the candidate that matched."""
    human: str | None = None
    """What the human decided on the recorded exception, if anything (approved, rejected, ...)."""

    @property
    def changed(self) -> bool:
        return self.recorded != self.candidate

    @property
    def change(self) -> str:
        return f"{self.recorded} → {self.candidate}" if self.changed else "unchanged"


class BacktestReport(FrozenModel):
    tenant_id: str
    candidate_hash: str
    since: str | None
    cases: list[BacktestCase]
    skipped: int = 0
    """Recorded proposals without an observation snapshot to replay against."""

    def summary(self) -> dict[str, int]:
        """Number of cases per change, e.g. {'escalated → auto': 2, 'unchanged': 5}."""
        out: dict[str, int] = {}
        for case in self.cases:
            out[case.change] = out.get(case.change, 0) + 1
        return dict(sorted(out.items()))
