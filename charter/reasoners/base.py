"""The reasoner interface. The Claude reasoner and the offline reasoner both implement it.

A reasoner's output is a claim. Nothing it says is trusted by the gate: facts come from the
observation, authority comes from the constitution.
"""

from __future__ import annotations

from typing import Protocol

from schemas import Constitution, Observation, ProposedAction


class Reasoner(Protocol):
    name: str

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]: ...
