"""A human decision on an escalated proposal, as sent to the `decide` update or signal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.frozen import FrozenModel


class AmendmentRequest(FrozenModel):
    """Ask for a narrowly scoped allow rule so this class of exception stops escalating."""

    max_amount: Decimal | None = Field(
        default=None, gt=0, description="Upper bound for the new rule; defaults to the amount."
    )
    expires_at: datetime | None = Field(
        default=None, description="The new rule stops applying at this instant."
    )


class ProposalEdit(FrozenModel):
    """Approve-with-edit: the parameters an approver changes. The edit is gated again."""

    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)


#: The longest a signed statement may stay valid: a decision is made now, not stockpiled.
MAX_VALIDITY_MINUTES = 15


#: A fact an approver may let move, and by how much: `{"campaign.daily_budget": 0.10}` lets
#: the budget move by up to 10% of what the approver was shown, either way, and the approval
#: still holds. Only numeric facts of the proposal's records; none by default.
Tolerance = dict[
    Annotated[str, Field(pattern=r"^(invoice|vendor|campaign|payroll)\.[a-z_]{1,40}$")],
    Annotated[Decimal, Field(gt=0, le=1, max_digits=6, decimal_places=4)],
]


class DecisionStatement(FrozenModel):
    """What a member signs: exactly this decision, on exactly these parameters, of exactly
    this run, once, soon. Encoded as canonical JSON (sorted keys, no whitespace, UTF-8) and
    signed with Ed25519; `Decision.statement` carries those exact bytes as text."""

    tenant_id: str
    workflow_id: str
    run_id: str
    proposal_id: str
    digest: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the canonical JSON of the approved parameters: the proposal, "
        "or the proposal with the edit applied.",
    )
    outcome: Literal["approve", "reject"]
    edit: ProposalEdit | None = None
    reason: str = Field(default="", max_length=2000)
    amendment: AmendmentRequest | None = None
    member_id: str = Field(min_length=1, max_length=64)
    key_id: str = Field(pattern=r"^mk-[0-9a-f]{16}$")
    issued_at: AwareDatetime
    valid_minutes: int = Field(ge=1, le=MAX_VALIDITY_MINUTES)
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    via: Literal["member", "slack"] = "member"
    """`member`: signed with the member's own key; otherwise the front door that signed on
    the member's behalf with its registered front-door key."""
    slack_user_id: str | None = None
    slack_team_id: str | None = None
    tolerance: Tolerance | None = Field(
        default=None,
        max_length=16,
        description="Facts that may move within these fractions without voiding the approval. "
        "Absent: the statement's bytes (and so its digest) are those of a statement without it.",
    )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    proposal_id: str = Field(pattern=r"^p[0-9]{1,3}$")
    approver: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    outcome: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=2000)
    amendment: AmendmentRequest | None = None
    edit: ProposalEdit | None = None
    tolerance: Tolerance | None = Field(default=None, max_length=16)
    statement: str | None = Field(
        default=None,
        max_length=8000,
        description="The signed DecisionStatement, as the exact canonical JSON text signed.",
    )
    signature: str | None = Field(
        default=None,
        max_length=8500,
        pattern=r"^[A-Za-z0-9_-]{86}$|^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="Ed25519 signature of `statement`'s UTF-8 bytes, base64url without padding; "
        "or, signed with a passkey, its WebAuthn assertion over the statement's sha256 digest: "
        "authenticator data, client data JSON and signature, each base64url, joined by dots.",
    )


class DecisionReceipt(FrozenModel):
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
