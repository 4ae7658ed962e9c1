"""Quorum end to end: a rule that needs N distinct approvers, through the real workflow."""

from __future__ import annotations

import json

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from charter.storage import Database, runs
from schemas import ActInput, Decision, DecisionReceipt, RunState
from tests.support.decided_runs import (
    act_activities,
    actions,
    adopt_variant,
    run_ref,
    update_error,
)
from tests.support.running import audit_kinds, chain_ok, record_history, start, until_stage
from tests.support.signing import decide
from workflows import AgentLoop

LARGE = "    when: amount > 10000.0\n    effect: escalate\n"


async def test_quorum_of_two_distinct_approvers(
    admin_dsn: str, client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    version = await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvals_required: 2\n")
    handle = await start(client, tenant, "payables", focus=["INV-1044"], requested_by="leo")
    state = await until_stage(handle, "awaiting_decision")
    ps = state.proposals[0]
    assert ps.verdict is not None and ps.verdict.constitution_version == version
    assert ps.verdict.approvals_required == 2
    assert "escalate-large-payments" in [m.rule_id for m in ps.verdict.matched]

    first = await decide(
        handle,
        Decision(proposal_id="p1", approver="maya", outcome="approve", reason="closing docs"),
        result_type=DecisionReceipt,
    )
    assert (first.approvals, first.approvals_required, first.status) == (
        1,
        2,
        "awaiting_decision",
    )
    after_one: RunState = await handle.query(AgentLoop.state)
    assert after_one.proposals[0].status == "awaiting_decision"
    assert [d.approver for d in after_one.proposals[0].decisions] == ["maya"]
    assert await actions(db, tenant) == []
    async with db.tenant(tenant) as conn:
        exc_row = await runs.get_exception(conn, tenant, ps.exception_id or "")
    assert exc_row is not None and exc_row["status"] == "open"

    # The same approver twice does not make a quorum; a viewer never counts.
    again = await update_error(
        handle, Decision(proposal_id="p1", approver="maya", outcome="approve")
    )
    assert again.type == "DuplicateApproval"
    viewer = await update_error(
        handle, Decision(proposal_id="p1", approver="leo", outcome="approve")
    )
    assert viewer.type == "UnauthorisedApprover"

    # Calling act directly with one approval of two: refused by the database check.
    ref = await run_ref(handle, tenant, "payables")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            act_activities(db).act, ActInput(run=ref, proposal=ps.proposal)
        )
    assert refused.value.type == "NotAuthorised" and "1 of 2" in refused.value.message

    second = await decide(
        handle,
        Decision(proposal_id="p1", approver="sam", outcome="approve"),
        result_type=DecisionReceipt,
    )
    assert (second.approvals, second.status) == (2, "approved")
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    rows = await actions(db, tenant)
    assert [r["proposal_id"] for r in rows] == ["p1"]
    auth = json.loads(rows[0]["auth"])
    assert sorted(auth["approvers"]) == ["maya", "sam"] and auth["approvals_required"] == 2
    kinds = await audit_kinds(db, tenant, handle.id)
    assert kinds.count("decision") == 2
    assert kinds.index("action_intent") > max(i for i, k in enumerate(kinds) if k == "decision")
    await chain_ok(db, tenant)
    await record_history(handle, "quorum_two_approvers")


async def test_a_reject_by_any_approver_rejects(
    admin_dsn: str, client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvals_required: 2\n")
    handle = await start(client, tenant, "payables", focus=["INV-1044"])
    await until_stage(handle, "awaiting_decision")
    await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="approve"))
    receipt = await decide(
        handle,
        Decision(proposal_id="p1", approver="sam", outcome="reject", reason="wrong entity"),
        result_type=DecisionReceipt,
    )
    assert receipt.status == "rejected"
    result = await handle.result()
    assert result.proposals[0].status == "rejected" and result.proposals[0].action is None
    assert await actions(db, tenant) == []


async def test_requester_cannot_count_towards_the_quorum(
    admin_dsn: str, client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvals_required: 2\n")
    handle = await start(client, tenant, "payables", focus=["INV-1044"], requested_by="sam")
    await until_stage(handle, "awaiting_decision")
    await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="approve"))
    error = await update_error(
        handle, Decision(proposal_id="p1", approver="sam", outcome="approve")
    )
    assert error.type == "SelfApproval"
    state: RunState = await handle.query(AgentLoop.state)
    assert state.proposals[0].status == "awaiting_decision"
    await handle.terminate("test done")


async def test_rule_names_the_roles_that_may_approve(
    admin_dsn: str, client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvers: [owner]\n")
    handle = await start(client, tenant, "payables", focus=["INV-1044"])
    state = await until_stage(handle, "awaiting_decision")
    assert state.proposals[0].verdict is not None
    assert state.proposals[0].verdict.approver_roles == [["owner"]]
    error = await update_error(
        handle, Decision(proposal_id="p1", approver="sam", outcome="approve")
    )
    assert error.type == "UnauthorisedApprover" and "owner" in error.message
    await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="approve"))
    assert (await handle.result()).proposals[0].status == "executed"
