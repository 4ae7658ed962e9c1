"""What an action executes on: the gate's own verdict, or the proven approvals of humans.

The act activity finds one in the database before it moves anything, commits it with the
write intent (`action_intent`) and keeps it on the action's row. Its JSON is what those
records hold, field for field, so chains already written verify and ledgers rebuilt from
them compare.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.verdict import Verdict


class GateAuthorisation(BaseModel):
    """The gate let the proposal execute, and nothing since sent it to a human."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["gate"] = "gate"
    verdict: Verdict

    @property
    def judged(self) -> Verdict:
        """The verdict the action executes on."""
        return self.verdict


class ApprovalAuthorisation(BaseModel):
    """Enough proven approvals of exactly these parameters, the exception closed approved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["approval"] = "approval"
    exception_id: str
    approvers: list[str]
    approvals_required: int
    verdict: Verdict
    """The gate's verdict on the proposal as the reasoner made it."""
    edited_verdict: Verdict | None = None
    """After an approval with an edit: the gate's verdict on the edited parameters."""

    @property
    def judged(self) -> Verdict:
        """The verdict the action executes on: the edited parameters' after an edit."""
        return self.edited_verdict or self.verdict


Authorisation = Annotated[GateAuthorisation | ApprovalAuthorisation, Field(discriminator="kind")]

_ADAPTER: TypeAdapter[Authorisation] = TypeAdapter(Authorisation)


def parse_authorisation(raw: object) -> Authorisation:
    """An authorisation as a record stored it (its JSON, parsed)."""
    return _ADAPTER.validate_python(raw)
