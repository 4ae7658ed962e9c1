"""An exception nobody decides expires after the decision timeout, and nothing executes.

Runs on Temporal's time-skipping test server: seven days pass in seconds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database, runs
from schemas import Decision, RunState
from tests.support.running import audit_kinds, chain_ok, record_history, start
from tests.support.signing import decide
from tests.support.vault import session_vault
from worker import build_worker
from workflows import AgentLoop

QUEUE = "charter-time-skipping"


async def test_exception_expires_after_seven_days(
    time_env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    worker = build_worker(
        time_env.client, Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()), QUEUE
    )
    async with worker:
        handle = await start(
            time_env.client, tenant, "payables", task_queue=QUEUE, focus=["INV-1043"]
        )
        # result() lets the server skip time: the 7-day wait and its daily reminders pass.
        result = await handle.result()
        ps = result.proposals[0]
        assert ps.status == "expired" and ps.action is None
        assert ps.expires_at is not None
        # Six daily reminders before the deadline, then the expiry.
        kinds = await audit_kinds(db, tenant, handle.id)
        assert kinds.count("exception_reminder") == 6
        assert "exception_expired" in kinds and "action_intent" not in kinds
        async with db.tenant(tenant) as conn:
            assert ps.exception_id is not None
            exc = await runs.get_exception(conn, tenant, ps.exception_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM charter.actions WHERE tenant_id = $1", tenant
            )
        assert exc is not None and exc["status"] == "expired" and count == 0
        await chain_ok(db, tenant)
        await record_history(handle, "escalate_expire_local_records")

        # A decision after expiry is refused: the run is closed and accepts none.
        with pytest.raises(RPCError):
            await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="approve"))


async def test_timeout_is_configurable_and_approval_before_it_executes(
    time_env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    worker = build_worker(
        time_env.client, Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()), QUEUE
    )
    async with worker:
        handle = await start(
            time_env.client,
            tenant,
            "payables",
            task_queue=QUEUE,
            focus=["INV-1043"],
            decision_timeout=timedelta(hours=2),
            reminder_interval=timedelta(hours=1),
        )
        # Let one hour pass (one reminder), then approve.
        await time_env.sleep(timedelta(minutes=90))
        state: RunState = await handle.query(AgentLoop.state)
        assert state.stage == "awaiting_decision"
        assert state.proposals[0].expires_at is not None
        await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="approve"))
        result = await handle.result()
        assert result.proposals[0].status == "executed"
        kinds = await audit_kinds(db, tenant, handle.id)
        assert kinds.count("exception_reminder") == 1 and "exception_expired" not in kinds
