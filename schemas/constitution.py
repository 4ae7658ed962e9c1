"""The constitution: a tenant's versioned, immutable law for its agents.

The document model here is the parsed form; `charter.governance.constitution` loads it from YAML,
validates every CEL condition and computes the content hash.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from schemas.frozen import FrozenModel

Effect = Literal["allow", "escalate", "deny"]


class ActionType(FrozenModel):
    reversible: bool
    description: str = ""
    # None (not False) so that documents written before spend limits keep their content hash.
    spends: bool | None = Field(
        default=None,
        description="The amount is money leaving the company: counted as spend and by limits.",
    )


#: The scopes a limit (and a `spend.*` fact) sums over. `autonomous` counts only actions
#: executed without a human decision.
LimitScope = Literal["autonomous", "counterparty", "agent", "action", "total"]

#: Rolling windows, ISO 8601 durations ending at the moment of judgement. A fixed set: an
#: unknown window is a typo the loader rejects, like an unknown field.
SpendWindow = Literal["P1D", "P7D", "P30D"]


class Limit(FrozenModel):
    """A cap on what may be spent within a rolling window, enforced at execution."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    title: str = Field(min_length=1, max_length=300)
    scope: LimitScope
    window: SpendWindow
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    applies_to: list[str] = Field(
        default=["*"], min_length=1, description="Spending action types the limit counts."
    )
    on_exceed: Literal["escalate", "deny"] = "escalate"
    approvals_may_exceed: bool = Field(
        default=False, description="A human approval may carry spend past the limit."
    )


class Rule(FrozenModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    title: str = Field(min_length=1, max_length=300)
    applies_to: list[str] = Field(min_length=1)
    when: str = Field(default="true", min_length=1, max_length=2000, description="CEL condition.")
    effect: Effect
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    approvals_required: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Quorum: distinct approvers an escalation by this rule needs.",
    )
    approvers: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Member roles allowed to approve an escalation by this rule.",
    )
    expires_at: datetime | None = Field(
        default=None,
        description="The rule stops applying at this instant (compared with the observation time).",
    )
    amendment: AmendmentOrigin | None = None


class AmendmentOrigin(FrozenModel):
    """Where an amendment rule came from: the human decision that created it."""

    approved_by: str
    exception_id: str
    from_version: int


class Defaults(FrozenModel):
    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    # None (not 1) so that documents written before quorums existed keep their content hash.
    approvals_required: int | None = Field(
        default=None, ge=1, le=10, description="Quorum of an escalation (default 1)."
    )
    # None (not "USD") so that documents written before it keep their content hash.
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="The base currency: a bare number compared with an amount is in it "
        "(default USD).",
    )

    @property
    def base_currency(self) -> str:
        return self.currency or "USD"


class ConstitutionDocument(FrozenModel):
    defaults: Defaults = Defaults()
    action_types: dict[str, ActionType]
    rules: list[Rule]
    # None (not []) so that documents written before limits keep their content hash.
    limits: list[Limit] | None = None


class Constitution(FrozenModel):
    """A stored version: the document plus its identity."""

    tenant_id: str
    version: int = Field(ge=1)
    content_hash: str
    document: ConstitutionDocument


Rule.model_rebuild()
