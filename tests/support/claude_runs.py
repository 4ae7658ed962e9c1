"""The Claude reasoner's tests: its task queue and key, runs started for it, replies the fake
Messages API gives, and what a run left behind."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from charter.demo.seed import constitution_source
from charter.governance.constitution import load_yaml
from charter.storage import Database, audit_trail
from schemas import AgentRunInput, Constitution, RunState
from starter import start_run
from tests.support.cli import run_main
from tests.support.polling import eventually
from workflows import AgentLoop

CLAUDE_QUEUE = "charter-claude-test"


#: Looks like a key so that a leak would be recognisable in logs, payloads or the database.
TEST_API_KEY = "sk-ant-test-" + "k3y" * 10


async def start(client: Client, tenant: str, agent: str, **kw: object) -> WorkflowHandle:  # type: ignore[type-arg]
    run = AgentRunInput(tenant_id=tenant, agent=agent, trigger=f"t-{uuid.uuid4().hex[:8]}", **kw)  # type: ignore[arg-type]
    return await start_run(client, run, task_queue=CLAUDE_QUEUE)


async def settled(handle: WorkflowHandle) -> RunState:  # type: ignore[type-arg]
    """Wait until the run has gated everything and executed what it may on its own: it
    completed or waits on a human (executions run beside the wait)."""

    async def check() -> RunState | None:
        state = await handle.query(AgentLoop.state)
        settled = state.stage in ("awaiting_decision", "completed")
        acting = any(p.status == "gated" for p in state.proposals)
        return state if settled and not acting else None

    return await eventually(check, timeout=60)


async def charter_cli(
    admin_dsn: str, client: Client, tmp_path: Path, *args: str
) -> tuple[int, str]:
    """Run the `charter` CLI against the test database, through its `main` in this process."""
    ran = await run_main(
        *args,
        env={
            "DATABASE_URL": admin_dsn,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "CHARTER_STATE_DIR": str(tmp_path / "state"),
            "ANTHROPIC_API_KEY": None,
        },
    )
    return ran.code, ran.output


def pay(reference: str, amount: str, counterparty: str, confidence: float = 0.93) -> dict[str, Any]:
    return {
        "action": "schedule_payment",
        "amount": amount,
        "currency": "USD",
        "counterparty": counterparty,
        "reference": reference,
        "confidence": confidence,
        "rationale": f"Pay {reference}.",
        "citations": ["allow-verified-vendor-bills"],
    }


async def entries(db: Database, tenant: str, kind: str) -> list[dict[str, Any]]:
    async with db.tenant(tenant) as conn:
        return [e.snapshot async for e in audit_trail.entries(conn, tenant) if e.kind == kind]


async def action_count(db: Database, tenant: str) -> int:
    async with db.tenant(tenant) as conn:
        n = await conn.fetchval("SELECT count(*) FROM charter.actions WHERE tenant_id = $1", tenant)
    return int(n)


async def reason_attempts(handle: WorkflowHandle) -> list[int]:  # type: ignore[type-arg]
    """The attempt number of each started `reason` activity task, from history."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    attempts = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if scheduled.get(attrs.scheduled_event_id) == "reason":
                attempts.append(attrs.attempt)
    return attempts


def acme() -> Constitution:
    document = load_yaml(constitution_source("acme"))
    return Constitution(tenant_id="acme", version=3, content_hash="ab" * 32, document=document)
