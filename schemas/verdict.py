"""The gate's verdict: the authoritative answer to "may this proposal execute?"."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from schemas.constitution import Effect
from schemas.frozen import FrozenModel

Outcome = Literal["execute", "escalate", "deny"]

EscalationCause = Literal[
    "irreversible",
    "outside_bounds",
    "below_confidence",
    "escalation_rule",
    "rule_error",
    "unknown_action",
    "citation_mismatch",
    "inexact_amount",
    "currency_mismatch",
    "limit_exceeded",
]


class RuleMatch(FrozenModel):
    rule_id: str
    title: str
    effect: Effect
    condition: str
    min_confidence: float | None = None
    approvals_required: int | None = None
    approvers: list[str] | None = None
    why: str = ""
    """The observed values the condition looked at, e.g. `amount=2300.0, vendor.verified=false`."""


class CitationCheck(FrozenModel):
    """The reasoner's citations against the pinned version: advisory, but checked."""

    cited: list[str] = []
    unknown: list[str] = []
    """Cited ids that are not rules of the pinned version."""
    missing: list[str] = []
    """Rules the gate found decisive that the proposal did not cite."""
    inapplicable: list[str] = []
    """Cited rules that exist but cannot apply to the proposal's action type."""

    @property
    def mismatch(self) -> bool:
        return bool(self.unknown or self.missing or self.inapplicable)


class RuleError(FrozenModel):
    """A rule whose condition could not be evaluated. Fails closed: it escalates."""

    rule_id: str
    error: str


class Verdict(FrozenModel):
    proposal_id: str
    outcome: Outcome
    constitution_version: int
    constitution_hash: str
    evaluated: list[str]
    """Every rule that applied to the action type and was evaluated, in document order."""
    matched: list[RuleMatch]
    errors: list[RuleError] = []
    causes: list[EscalationCause] = []
    threshold: float | None = None
    confidence: float
    explanation: str
    approvals_required: int = 1
    """Quorum: distinct approvals needed (max over matched rules, default from the document)."""
    approver_roles: list[list[str]] = []
    """Per matched rule that names roles: an approver must hold at least one role of each."""
    expired: list[str] = []
    """Rules that applied to the action type but had expired at the observation time."""
    citations: CitationCheck | None = None
    limits: list[LimitBreach] = []
    """Declared limits the proposal would carry spend past, with the spend seen."""


class LimitBreach(FrozenModel):
    """One limit a proposal does not fit under: what a human is shown."""

    limit_id: str
    scope: str
    window: str
    limit: Decimal
    spent: Decimal
    """Spend already counted in the window (executed and reserved)."""
    amount: Decimal
    currency: str
    on_exceed: str
    approvals_may_exceed: bool = False
    limit_currency: str | None = None
    """The limit's currency, when it is not the proposal's or spend in others was counted."""
    converted: Decimal | None = None
    """The proposal's amount in the limit's currency, when it is in another."""
    rates: list[str] = []
    """The conversions counted, e.g. `EUR->USD 1.085 (ecb, 2026-12-06T16:00:00+00:00)`."""
    unpriced: list[str] = []
    """Currencies with spend (or the proposal) that no usable rate converts: not counted,
    so the proposal does not fit."""


Verdict.model_rebuild()
