"""The base of the contract's values."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    # A value of the contract refuses fields it does not know and never changes once built.
    model_config = ConfigDict(extra="forbid", frozen=True)
