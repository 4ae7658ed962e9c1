"""The agent loop end to end, on a real Temporal dev server and a real PostgreSQL."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from charter.storage import Database, runs
from charter.temporal import search_attributes as sa
from schemas import AgentRunInput, Decision, RunState, legacy_workflow_id_for
from starter import start_run
from tests.support.owner import as_owner
from tests.support.queues import TASK_QUEUE
from tests.support.running import audit_kinds, chain_ok, record_history, start, until_stage
from tests.support.signing import decide, decide_by_signal
from workflows import AgentLoop


def _decision(state: RunState, approver: str, outcome: str = "approve", **kw: object) -> Decision:
    pid = next(p.proposal.proposal_id for p in state.proposals if p.status == "awaiting_decision")
    return Decision(proposal_id=pid, approver=approver, outcome=outcome, **kw)  # type: ignore[arg-type]


async def _actions(db: Database, tenant: str) -> list[str]:
    async with db.tenant(tenant) as conn:
        return [
            r["proposal_id"]
            for r in await conn.fetch(
                "SELECT proposal_id FROM charter.actions WHERE tenant_id = $1", tenant
            )
        ]


async def _update_error(exc: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_auto_execute_and_deny(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1041", "INV-1042", "INV-1039"])
    result = await handle.result()
    by_ref = {p.proposal.reference: p for p in result.proposals}
    assert by_ref["INV-1041"].status == "executed"
    assert by_ref["INV-1042"].status == "executed"
    denied = by_ref["INV-1039"]
    assert denied.status == "denied" and denied.action is None
    assert denied.verdict is not None
    assert "deny-already-paid" in [m.rule_id for m in denied.verdict.matched]
    # Only the two allowed payments reached the books.
    assert sorted(await _actions(db, tenant)) == sorted(
        [by_ref["INV-1041"].proposal.proposal_id, by_ref["INV-1042"].proposal.proposal_id]
    )
    # The audit chain verifies, and Temporal's result anchors its head.
    assert await chain_ok(db, tenant) == result.audit_head.seq
    kinds = await audit_kinds(db, tenant, handle.id)
    assert kinds[:3] == ["run_started", "observed", "proposed"]
    assert kinds.count("gate_verdict") == 3
    assert kinds.count("action_intent") == kinds.count("action_result") == 2
    assert kinds[-1] == "run_completed"
    # Every decision records the constitution version and the rules it evaluated.
    for ps in result.proposals:
        assert ps.verdict is not None and ps.verdict.constitution_version == 1
        assert "allow-verified-vendor-bills" in ps.verdict.evaluated
    # Search attributes let the Temporal UI filter the run.
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(sa.TENANT) == tenant
    assert desc.typed_search_attributes.get(sa.STAGE) == "completed"
    assert set(desc.typed_search_attributes.get(sa.OUTCOMES) or []) == {"executed", "denied"}
    await record_history(handle, "auto_execute_and_deny_local_records")


async def test_escalate_approve_act(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    ps = state.proposals[0]
    assert ps.verdict is not None and ps.verdict.causes == ["outside_bounds"]
    assert ps.exception_id is not None
    async with db.tenant(tenant) as conn:
        exc = await runs.get_exception(conn, tenant, ps.exception_id)
    assert exc is not None and exc["status"] == "open"
    assert exc["context"]["observed"]["vendor"]["verified"] is False
    assert await _actions(db, tenant) == []

    receipt = await decide(handle, _decision(state, "maya", reason="known studio"))
    assert receipt.outcome == "approve" and receipt.approver == "maya"
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    assert await _actions(db, tenant) == ["p1"]
    async with db.tenant(tenant) as conn:
        exc = await runs.get_exception(conn, tenant, ps.exception_id)
        paid = await conn.fetchval(
            "SELECT status FROM charter.invoices WHERE tenant_id = $1 AND invoice_id = 'INV-1043'",
            tenant,
        )
    assert exc is not None and exc["status"] == "approved"
    assert paid == "scheduled"
    kinds = await audit_kinds(db, tenant, handle.id)
    assert kinds.index("decision") < kinds.index("action_intent") < kinds.index("action_result")
    await chain_ok(db, tenant)
    await record_history(handle, "escalate_approve_act_local_records")


async def test_escalate_reject(client: Client, worker: Worker, db: Database, tenant: str) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1045"])
    state = await until_stage(handle, "awaiting_decision")
    assert state.proposals[0].verdict is not None
    assert state.proposals[0].verdict.causes == ["below_confidence"]
    await decide(handle, _decision(state, "sam", "reject", reason="phishing"))
    result = await handle.result()
    assert result.proposals[0].status == "rejected" and result.proposals[0].action is None
    assert await _actions(db, tenant) == []
    assert "action_intent" not in await audit_kinds(db, tenant, handle.id)
    await chain_ok(db, tenant)
    await record_history(handle, "escalate_reject")


async def test_decision_by_signal(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "marketing", focus=["cmp-search"])
    state = await until_stage(handle, "awaiting_decision")
    await decide_by_signal(handle, _decision(state, "maya", reason="fire and forget"))
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    await chain_ok(db, tenant)
    await record_history(handle, "decision_by_signal")


async def test_duplicate_start_is_rejected(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    run = AgentRunInput(tenant_id=tenant, agent="payables", trigger="dup-1", focus=["INV-1041"])
    handle = await start_run(client, run, task_queue=TASK_QUEUE)
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_run(client, run, task_queue=TASK_QUEUE)
    await handle.result()
    # Still rejected once the first run has closed: the trigger ran, it never runs again.
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_run(client, run, task_queue=TASK_QUEUE)
    assert await _actions(db, tenant) == ["p1"]


async def test_trigger_started_under_the_old_id_format_is_still_a_duplicate(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """Runs started before the trigger became a digest keep their readable ids; starting the
    same trigger after the upgrade must still be refused, not run a second time."""
    run = AgentRunInput(tenant_id=tenant, agent="payables", trigger="old-1", focus=["INV-1041"])
    legacy = legacy_workflow_id_for(tenant, "payables", "old-1")
    old = await client.start_workflow(AgentLoop.run, run, id=legacy, task_queue=TASK_QUEUE)
    await old.result()
    with pytest.raises(WorkflowAlreadyStartedError) as refused:
        await start_run(client, run, task_queue=TASK_QUEUE)
    assert refused.value.workflow_id == legacy
    assert await _actions(db, tenant) == ["p1"]


async def test_unauthorised_approvers_are_refused(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"], requested_by="sam")
    state = await until_stage(handle, "awaiting_decision")
    before = await chain_ok(db, tenant)
    cases = {
        "leo": "UnauthorisedApprover",  # a member, but only a viewer
        "ivy": "UnauthorisedApprover",  # another tenant's CEO
        "sam": "SelfApproval",  # asked for the run
    }
    for approver, error_type in cases.items():
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await decide(handle, _decision(state, approver))
        assert (await _update_error(exc)).type == error_type
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await decide(handle, Decision(proposal_id="p9", approver="maya", outcome="approve"))
    assert (await _update_error(exc)).type == "UnknownProposal"
    # Nothing changed: the validator rejected them before they reached history.
    after: RunState = await handle.query(AgentLoop.state)
    assert after.proposals[0].status == "awaiting_decision" and after.proposals[0].decisions == []
    assert await chain_ok(db, tenant) == before
    history = await handle.fetch_history()
    assert not any(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events
    )
    await decide(handle, _decision(state, "maya", "reject"))
    # A second decision on the same proposal is refused: by the validator (no proof needed)
    # while the run is finishing, or by the server once the rejection has ended it (the run
    # records its end in the same workflow task as the decision's result).
    with pytest.raises((WorkflowUpdateFailedError, RPCError)) as refused:
        await handle.execute_update(
            AgentLoop.decide, Decision(proposal_id="p1", approver="maya", outcome="approve")
        )
    if isinstance(refused.value, RPCError):
        assert refused.value.status == RPCStatusCode.NOT_FOUND
    else:
        assert (await _update_error(refused)).type == "NotAwaitingDecision"  # type: ignore[arg-type]
    assert (await handle.result()).proposals[0].status == "rejected"


async def test_approver_revoked_after_start_is_refused_by_the_database(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    async with as_owner(db, tenant) as conn:
        await conn.execute(
            "UPDATE charter.members SET active = false WHERE tenant_id = $1 AND member_id = 'sam'",
            tenant,
        )
    # The workflow still lists sam (snapshot at start); the activity re-checks the database.
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await decide(handle, _decision(state, "sam"))
    assert (await _update_error(exc)).type == "UnauthorisedApprover"
    after: RunState = await handle.query(AgentLoop.state)
    assert after.proposals[0].status == "awaiting_decision"
    assert await _actions(db, tenant) == []
    await decide(handle, _decision(state, "maya"))
    assert (await handle.result()).proposals[0].status == "executed"


async def test_malformed_decision_is_refused(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    await until_stage(handle, "awaiting_decision")
    before = await chain_ok(db, tenant)
    for payload, field in (
        ({"proposal_id": "p1", "approver": "maya", "outcome": "maybe"}, "outcome"),
        ({"proposal_id": "p1", "approver": "maya"}, "outcome: Field required"),
        ({"proposal_id": "p1", "approver": "maya", "outcome": "approve", "amount": 1}, "amount"),
        ({"proposal_id": "p1; drop", "approver": "maya", "outcome": "approve"}, "proposal_id"),
        ("approve", "decision"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await decide(handle, payload)
        error = await _update_error(exc)
        assert error.type == "InvalidDecision"
        assert error.message.startswith("invalid decision:") and field in error.message
    # Malformed signals are dropped, not applied.
    await decide_by_signal(handle, {"proposal_id": "p1", "approver": "maya", "outcome": "yes"})
    state: RunState = await handle.query(AgentLoop.state)
    assert state.proposals[0].status == "awaiting_decision"
    assert await chain_ok(db, tenant) == before
    assert await _actions(db, tenant) == []
    await handle.terminate("test done")


async def test_tenant_without_constitution_fails_clearly(
    client: Client, worker: Worker, db: Database
) -> None:
    handle = await start(client, "no-such-tenant", "payables")
    with pytest.raises(WorkflowFailureError) as exc:
        await handle.result()
    cause = exc.value.cause
    # start_run is a local activity in newer runs: its refusal reaches the run unwrapped.
    refusal = cause.cause if isinstance(cause, ActivityError) else cause
    assert isinstance(refusal, ApplicationError) and refusal.non_retryable
    assert refusal.type == "ConstitutionNotFound"
    assert "no-such-tenant" in refusal.message
