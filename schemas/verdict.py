"""The gate's verdict: the authoritative answer to "may this proposal execute?"."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.constitution import Effect

Outcome = Literal["execute", "escalate", "deny"]

EscalationCause = Literal[
    "irreversible",
    "outside_bounds",
    "below_confidence",
    "escalation_rule",
    "rule_error",
    "unknown_action",
]


class RuleMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    title: str
    effect: Effect
    condition: str
    min_confidence: float | None = None


class RuleError(BaseModel):
    """A rule whose condition could not be evaluated. Fails closed: it escalates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    error: str


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
