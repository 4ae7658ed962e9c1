"""The model call heartbeats: while the reasoner thinks, Temporal sees the activity alive (and
the workflow gives it the short heartbeat timeout, so a dead worker is noticed in seconds)."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from charter.temporal.heartbeats import HEARTBEAT_TIMEOUT
from schemas import Constitution, Observation, ProposedAction
from tests.support.polling import eventually
from tests.support.running import start
from tests.support.vault import session_vault
from worker import build_worker


class SlowReasoner(OfflineReasoner):
    """The offline reasoner, after a pause long enough for a few heartbeats."""

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]:
        await asyncio.sleep(4.0)
        return await super().propose(observation, constitution)


async def _reasoning_heartbeat(handle: WorkflowHandle) -> object:  # type: ignore[type-arg]
    described = await handle.describe()
    for pending in described.raw_description.pending_activities:
        if pending.activity_type.name == "reason" and pending.HasField("last_heartbeat_time"):
            return pending
    return None


async def test_the_model_call_heartbeats(
    env: WorkflowEnvironment,
    client: Client,
    db: Database,
    tenant: str,
) -> None:
    queue = f"beats-{uuid.uuid4().hex[:8]}"
    async with build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=SlowReasoner()), queue
    ):
        handle = await start(client, tenant, "payables", task_queue=queue, focus=["INV-1041"])
        pending = await eventually(lambda: _reasoning_heartbeat(handle), timeout=30, interval=0.1)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.proposals[0].status == "executed"
    assert pending is not None
    history = await handle.fetch_history()
    (scheduled,) = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "reason"
    ]
    assert scheduled.heartbeat_timeout.ToSeconds() == HEARTBEAT_TIMEOUT.total_seconds()
