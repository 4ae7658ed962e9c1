"""The agent loop end to end, on a real Temporal dev server and a real PostgreSQL."""

from __future__ import annotations

import uuid

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from charter.audit import verify_chain
from charter.storage import Database, audit
from schemas import AgentRunInput, Decision, DecisionReceipt, RunState
from starter import start_run
from tests.conftest import TASK_QUEUE, eventually


async def start(client: Client, tenant: str, agent: str, **kw: object) -> WorkflowHandle:  # type: ignore[type-arg]
    run = AgentRunInput(tenant_id=tenant, agent=agent, trigger=f"t-{uuid.uuid4().hex[:8]}", **kw)  # type: ignore[arg-type]
    return await start_run(client, run, task_queue=TASK_QUEUE)


async def until_stage(handle: WorkflowHandle, *stages: str) -> RunState:  # type: ignore[type-arg]
    async def check() -> RunState | None:
        state = await handle.query("state", result_type=RunState)
        return state if state.stage in stages else None

    return await eventually(check)


async def chain_ok(db: Database, tenant: str) -> int:
    async with db.tenant(tenant) as conn:
        report = verify_chain(tenant, [e async for e in audit.entries(conn, tenant)])
    assert report.ok, report
    return report.entries


async def test_auto_execute_and_deny(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1041", "INV-1042", "INV-1039"])
    result = await handle.result()
    by_ref = {p.proposal.reference: p for p in result.proposals}
    assert by_ref["INV-1041"].status == "executed"
    assert by_ref["INV-1042"].status == "executed"
    assert by_ref["INV-1039"].status == "denied"
    assert by_ref["INV-1039"].verdict.matched[0].rule_id == "deny-already-paid"
    assert await chain_ok(db, tenant) == result.audit_head.seq


async def test_escalate_approve_act(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    ps = state.proposals[0]
    assert ps.status == "awaiting_decision" and "outside_bounds" in ps.verdict.causes
    receipt = await handle.execute_update(
        "decide",
        Decision(
            proposal_id=ps.proposal.proposal_id,
            approver="maya",
            outcome="approve",
            reason="known studio",
        ),
        result_type=DecisionReceipt,
    )
    assert receipt.outcome == "approve"
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    await chain_ok(db, tenant)
