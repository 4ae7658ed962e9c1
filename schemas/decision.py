"""A human decision on an escalated proposal, as sent to the `decide` update or signal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AmendmentRequest(BaseModel):
    """Ask for a narrowly scoped allow rule so this class of exception stops escalating."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_amount: Decimal | None = Field(
        default=None, gt=0, description="Upper bound for the new rule; defaults to the amount."
    )
    expires_at: datetime | None = Field(
        default=None, description="The new rule stops applying at this instant."
    )


class ProposalEdit(BaseModel):
    """Approve-with-edit: the parameters an approver changes. The edit is gated again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    proposal_id: str = Field(pattern=r"^p[0-9]{1,3}$")
    approver: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    outcome: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=2000)
    amendment: AmendmentRequest | None = None
    edit: ProposalEdit | None = None


class DecisionReceipt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    proposal_id: str
    outcome: Literal["approve", "reject"]
    approver: str
    decided_at: datetime
    amendment_version: int | None = None
    approvals: int = 1
    """Distinct approvals of the current parameters, this one included."""
    approvals_required: int = 1
    status: str | None = None
    """The proposal's status after this decision (`approved`, `awaiting_decision`, ...)."""
