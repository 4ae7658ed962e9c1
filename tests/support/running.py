"""Test helpers: start runs, poll state, check the audit chain, record histories."""

from __future__ import annotations

import os
import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle

from charter.audit.chain import verify_chain
from charter.storage import Database, audit_trail
from schemas import AgentRunInput, AgentRunResult, RunState
from starter import start_run
from tests.support.paths import HISTORIES
from tests.support.polling import eventually
from tests.support.queues import TASK_QUEUE
from workflows import AgentLoop


async def start(
    client: Client, tenant: str, agent: str, *, task_queue: str = TASK_QUEUE, **kw: Any
) -> WorkflowHandle[Any, AgentRunResult]:
    run = AgentRunInput(tenant_id=tenant, agent=agent, trigger=f"t-{uuid.uuid4().hex[:8]}", **kw)
    return await start_run(client, run, task_queue=task_queue)


async def until_stage(handle: WorkflowHandle[Any, Any], *stages: str) -> RunState:
    async def check() -> RunState | None:
        state: RunState = await handle.query(AgentLoop.state)
        return state if state.stage in stages else None

    result: RunState = await eventually(check)
    return result


async def until_sent_back(handle: WorkflowHandle[Any, Any], first: str | None) -> RunState:
    """Until the act sent an approved proposal back to the humans with a new exception."""

    async def check() -> RunState | None:
        state: RunState = await handle.query(AgentLoop.state)
        ps = state.proposals[0]
        return state if ps.exception_id not in (None, first) else None

    result: RunState = await eventually(check)
    return result


async def chain_ok(db: Database, tenant: str) -> int:
    """Verify the tenant's audit chain; return its number of entries."""
    async with db.tenant(tenant) as conn:
        report = verify_chain(tenant, [e async for e in audit_trail.entries(conn, tenant)])
    assert report.ok, report
    return report.entries


async def audit_kinds(db: Database, tenant: str, workflow_id: str) -> list[str]:
    async with db.tenant(tenant) as conn:
        return [
            e.kind async for e in audit_trail.entries(conn, tenant) if e.workflow_id == workflow_id
        ]


async def record_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With CHARTER_RECORD_HISTORIES=1, save the run's history for the replay test."""
    if os.environ.get("CHARTER_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
