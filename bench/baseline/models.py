"""Inputs of the bare baseline's workflow and activities (bench-only, not the contract)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas import Observation, Proposal


class BareRunInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    agent: str = "payables"
    focus: list[str] = []
    park: bool = False
    """Wait for a signal after reasoning (the parked baseline) instead of acting."""


class BareReasonInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    observation: Observation


class BareActInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    workflow_id: str
    proposal: Proposal
