"""The worst case a run may be configured with (reminders every minute, thirty days to
decide) stays far below Temporal's history limits. Time-skipping: thirty days in seconds."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from schemas.run import MAX_DECISION_TIMEOUT, MIN_REMINDER_INTERVAL
from tests.support.running import audit_kinds, chain_ok, start
from tests.support.vault import session_vault
from worker import build_worker
from workflows.agent_loop import MAX_REMINDERS

QUEUE = "charter-history-bound"
#: Temporal refuses a history beyond 51,200 events or 50 MB; "far below" is a tenth of both.
EVENT_BOUND = 5_120
SIZE_BOUND = 5 * 1024 * 1024


async def test_smallest_interval_over_longest_timeout_stays_bounded(
    time_env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    async with build_worker(
        time_env.client, Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()), QUEUE
    ):
        handle = await start(
            time_env.client,
            tenant,
            "payables",
            task_queue=QUEUE,
            focus=["INV-1043"],
            decision_timeout=MAX_DECISION_TIMEOUT,
            reminder_interval=MIN_REMINDER_INTERVAL,
        )
        result = await handle.result()
    assert result.proposals[0].status == "expired"
    kinds = await audit_kinds(db, tenant, handle.id)
    # Unbounded, a reminder a minute for thirty days would be 43,199 reminders.
    reminders = kinds.count("exception_reminder")
    assert MAX_REMINDERS // 2 <= reminders <= MAX_REMINDERS
    history = await handle.fetch_history()
    size = len(history.to_json())
    assert len(history.events) < EVENT_BOUND, len(history.events)
    assert size < SIZE_BOUND, size
    print(f"history: {len(history.events)} events, {size:,} bytes, {reminders} reminders")
    await chain_ok(db, tenant)
