"""A reply with more proposals than a run can number is refused whole, never cut short."""

from __future__ import annotations

import uuid
from decimal import Decimal

from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps
from charter.storage import Database
from schemas import (
    MAX_PROPOSALS,
    AgentRunResult,
    Constitution,
    Observation,
    ProposedAction,
)
from tests.support.running import audit_kinds, start
from tests.support.vault import session_vault
from worker import build_worker


class FloodingReasoner:
    """Proposes one small payment more than a run may hold."""

    name = "flooding"

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]:
        vendor = observation.vendors[0]
        return [
            ProposedAction(
                action="schedule_payment",
                counterparty=vendor.name,
                amount=Decimal("1.00"),
                currency="USD",
                reference=f"FLOOD-{n}",
                confidence=0.99,
                rationale="flood",
                citations=[],
            )
            for n in range(MAX_PROPOSALS + 1)
        ]


async def test_too_many_proposals_escalate_as_unreadable(
    client: Client, db: Database, tenant: str
) -> None:
    queue = f"flood-{uuid.uuid4().hex[:6]}"
    worker: Worker = build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=FloodingReasoner()), queue
    )
    async with worker:
        handle = await start(client, tenant, "payables", task_queue=queue)
        result: AgentRunResult = await handle.result()
    assert result.proposals == []
    failure = result.reasoning_failure
    assert failure is not None and failure.exception_id
    assert f"proposed {MAX_PROPOSALS + 1} actions" in failure.message
    kinds = await audit_kinds(db, tenant, handle.id)
    assert "reasoning_failed" in kinds and "action_intent" not in kinds
