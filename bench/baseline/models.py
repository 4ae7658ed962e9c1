"""Inputs of the bare baseline's workflow and activities (bench-only, not the contract)."""

from __future__ import annotations

from schemas import Observation, Proposal
from schemas.frozen import FrozenModel


class BareRunInput(FrozenModel):
    tenant_id: str
    agent: str = "payables"
    focus: list[str] = []
    park: bool = False
    """Wait for a signal after reasoning (the parked baseline) instead of acting."""


class BareReasonInput(FrozenModel):
    tenant_id: str
    observation: Observation


class BareActInput(FrozenModel):
    tenant_id: str
    workflow_id: str
    proposal: Proposal
