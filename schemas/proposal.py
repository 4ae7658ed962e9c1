"""What a reasoner recommends. A proposal is a claim, never an authorisation."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from schemas.frozen import FrozenModel


class ProposedAction(FrozenModel):
    """The reasoner's output, before the workflow gives it an id.

    This is also the schema of the tool a model is forced to call, so field descriptions
    are written for the model.
    """

    action: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="An action type declared by the constitution.",
    )
    amount: Decimal | None = Field(
        default=None, ge=0, description="Money moved or committed by the action."
    )
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    counterparty: str | None = Field(
        default=None, max_length=200, description="Who receives the money or the change."
    )
    reference: str | None = Field(
        default=None,
        max_length=64,
        description="Id of the observed record the action is about (invoice, campaign, payroll run).",
    )
    confidence: float = Field(ge=0.0, le=1.0, description="How sure the reasoner is, 0 to 1.")
    rationale: str = Field(max_length=4000, description="Why, in words a founder understands.")
    citations: list[str] = Field(
        default_factory=list, description="Ids of the constitution rules the reasoner evaluated."
    )


class Proposal(ProposedAction):
    """A proposed action with its identity inside a run."""

    proposal_id: str = Field(pattern=r"^p[0-9]{1,3}$")
