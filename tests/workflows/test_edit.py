"""Approve-with-edit end to end: the edited proposal is gated again, and the proposed,
approved and executed parameters are recorded separately."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from charter.storage import Database, audit_trail
from schemas import ActInput, Decision, ProposalEdit, RunState
from tests.support.decided_runs import (
    act_activities,
    actions,
    adopt_variant,
    run_ref,
    update_error,
)
from tests.support.running import chain_ok, record_history, start, until_stage
from tests.support.signing import decide
from workflows import AgentLoop


def _edit(approver: str, amount: str, outcome: str = "approve") -> Decision:
    return Decision(
        proposal_id="p1",
        approver=approver,
        outcome=outcome,  # type: ignore[arg-type]
        reason="pay milestone 1 minus the disputed part",
        edit=ProposalEdit(amount=Decimal(amount)),
    )


async def test_approve_with_a_lower_amount(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    await until_stage(handle, "awaiting_decision")
    receipt = await decide(handle, _edit("maya", "2000.00"))
    assert receipt.status == "approved"
    result = await handle.result()
    ps = result.proposals[0]
    assert ps.status == "executed"
    assert ps.proposal.amount == Decimal("2300.00")  # proposed
    assert ps.approved is not None and ps.approved.amount == Decimal("2000.00")  # approved
    assert ps.executed is not None and ps.executed.amount == Decimal("2000.00")  # executed
    # The edit went through the gate again: still outside bounds (unverified vendor), and now
    # also a partial payment, which the constitution sends to a human.
    assert ps.approved_verdict is not None
    assert ps.approved_verdict.causes == ["escalation_rule", "outside_bounds"]
    assert "escalate-partial-payments" in [m.rule_id for m in ps.approved_verdict.matched]

    rows = await actions(db, tenant)
    assert len(rows) == 1 and json.loads(rows[0]["proposal"])["amount"] == "2000.00"
    async with db.tenant(tenant) as conn:
        paid = await conn.fetchval(
            "SELECT amount FROM charter.payments WHERE tenant_id = $1 AND invoice_id = 'INV-1043'",
            tenant,
        )
        entries = [e async for e in audit_trail.entries(conn, tenant) if e.workflow_id == handle.id]
    assert paid == Decimal("2000.00")
    decision = next(e for e in entries if e.kind == "decision").snapshot
    assert decision["proposed"]["amount"] == "2300.00"
    assert decision["approved"]["amount"] == "2000.00"
    intent = next(e for e in entries if e.kind == "action_intent").snapshot
    assert intent["proposal"]["amount"] == "2000.00"
    assert intent["authorisation"]["edited_verdict"]["outcome"] == "escalate"

    # The approval is bound to the edited parameters: any other amount is refused.
    ref = await run_ref(handle, tenant, "payables")
    forged = ps.proposal.model_copy(update={"amount": Decimal("2100.00")})
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(act_activities(db).act, ActInput(run=ref, proposal=forged))
    assert exc.value.type == "NotAuthorised" and "differs" in exc.value.message
    # The originally proposed amount was never approved either.
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(
            act_activities(db).act, ActInput(run=ref, proposal=ps.proposal)
        )
    assert exc.value.type == "NotAuthorised"
    await chain_ok(db, tenant)
    await record_history(handle, "escalate_edit_approve")


async def test_an_edit_the_gate_denies_is_refused(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    await until_stage(handle, "awaiting_decision")
    before = await chain_ok(db, tenant)
    # More than the invoice: the deny rule on overpayment applies to the edit.
    error = await update_error(handle, _edit("maya", "2900.00"))
    assert error.type == "EditDenied" and "deny-unknown-or-overpaid-invoice" in error.message
    invalid = await update_error(handle, _edit("maya", "2000.00", outcome="reject"))
    assert invalid.type == "InvalidDecision"
    state: RunState = await handle.query(AgentLoop.state)
    assert state.proposals[0].status == "awaiting_decision" and state.proposals[0].approved is None
    assert await chain_ok(db, tenant) == before
    assert await actions(db, tenant) == []
    await handle.terminate("test done")


async def test_an_edit_inside_bounds_still_needs_the_quorum(
    admin_dsn: str, client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    large = "    when: amount > 10000.0\n    effect: escalate\n"
    await adopt_variant(admin_dsn, tenant, large, large + "    approvals_required: 2\n")
    handle = await start(client, tenant, "payables", focus=["INV-1044"])
    await until_stage(handle, "awaiting_decision")
    # 4,800 to a verified vendor is under the $5,000 limit, but the exception asked for two
    # approvers (and a partial payment goes to a human anyway): the edit cannot shortcut it.
    receipt = await decide(handle, _edit("maya", "4800.00"))
    assert (receipt.approvals, receipt.approvals_required, receipt.status) == (
        1,
        2,
        "awaiting_decision",
    )
    state: RunState = await handle.query(AgentLoop.state)
    ps = state.proposals[0]
    assert ps.approved_verdict is not None
    assert "allow-verified-vendor-bills" in [m.rule_id for m in ps.approved_verdict.matched]
    # A second edit after an approval would change what the first approver approved.
    error = await update_error(handle, _edit("sam", "4000.00"))
    assert error.type == "EditAfterApproval"
    await decide(handle, Decision(proposal_id="p1", approver="sam", outcome="approve"))
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    assert result.proposals[0].executed is not None
    assert result.proposals[0].executed.amount == Decimal("4800.00")
    await record_history(handle, "quorum_edit_approve")
