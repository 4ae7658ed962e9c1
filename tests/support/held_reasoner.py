"""A scripted model that answers only when told to: the stale-facts attack.

It receives the observation, signals that it has it, and holds its reply until the test
releases it, while the test changes the books or the law underneath. It stands for a model
that stalls (a Messages API answering 529 until it chooses to answer).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from schemas import Constitution, Observation, ProposedAction


class HeldReasoner:
    name = "held"

    def __init__(self) -> None:
        self._replies: dict[str, list[ProposedAction]] = {}
        self.observed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._release: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def script(self, tenant: str, proposals: list[ProposedAction]) -> None:
        self._replies[tenant] = proposals

    def release(self, tenant: str) -> None:
        self._release[tenant].set()

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]:
        tenant = observation.tenant_id
        self.observed[tenant].set()
        await self._release[tenant].wait()
        return self._replies.get(tenant, [])
