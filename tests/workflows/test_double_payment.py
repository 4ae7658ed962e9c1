"""Two runs about one invoice, both approved: the books pay it once (review r1).

The gate's deny rules (`deny-already-paid`, `deny-unknown-or-overpaid-invoice`) judge the
observation; an exception may wait days, and another run may pay the invoice meanwhile.
The write connector re-checks what is still owed under the invoice's row lock.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio.client import Client
from temporalio.worker import Worker

from charter.storage import Database
from schemas import Decision, RunState
from tests.support.running import start, until_sent_back, until_stage
from tests.support.signing import decide


async def _paid(db: Database, tenant: str, invoice: str) -> Decimal:
    async with db.tenant(tenant) as conn:
        total = await conn.fetchval(
            "SELECT COALESCE(sum(amount), 0) FROM charter.payments WHERE tenant_id = $1 AND "
            "invoice_id = $2",
            tenant,
            invoice,
        )
    return Decimal(total)


async def _audit_kinds(db: Database, tenant: str, workflow_id: str) -> list[str]:
    async with db.tenant(tenant) as conn:
        rows = await conn.fetch(
            "SELECT kind FROM charter.audit_entries WHERE tenant_id = $1 AND workflow_id = $2 "
            "ORDER BY seq",
            tenant,
            workflow_id,
        )
    return [r["kind"] for r in rows]


async def test_an_invoice_approved_in_two_runs_is_paid_once(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    first = await start(client, tenant, "payables", focus=["INV-1043"])
    second = await start(client, tenant, "payables", focus=["INV-1043"])
    for handle in (first, second):
        state: RunState = await until_stage(handle, "awaiting_decision")
        assert state.proposals[0].proposal.amount == Decimal("2300.00")
    assert await _paid(db, tenant, "INV-1043") == 0

    approve = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="due")
    await decide(first, approve)
    assert (await first.result()).proposals[0].status == "executed"
    assert await _paid(db, tenant, "INV-1043") == Decimal("2300.00")

    await decide(second, approve)
    # One payment of the bill, one key: the second run finds the payment made under it and
    # reports that, before judging again; nothing is paid twice and no intent is left open.
    again = (await second.result()).proposals[0]
    paid = (await first.result()).proposals[0]
    assert again.status == "executed" and again.action is not None and paid.action is not None
    assert again.action.status == "already_executed"
    assert again.action.connector_reference == paid.action.connector_reference
    assert await _paid(db, tenant, "INV-1043") == Decimal("2300.00")
    kinds = await _audit_kinds(db, tenant, second.id)
    assert "action_intent" not in kinds and "action_result" not in kinds


async def test_a_payroll_run_approved_in_two_runs_is_refused_not_retried(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """The books already refused a second submission; the act activity used to retry that
    refusal forever (a fresh `action_intent` every 30 s) instead of failing clearly."""
    first = await start(client, tenant, "payroll")
    second = await start(client, tenant, "payroll")
    states = [await until_stage(h, "awaiting_decision") for h in (first, second)]
    ps = states[0].proposals[0]
    assert ps.proposal.action == "run_payroll"
    approve = Decision(proposal_id=ps.proposal.proposal_id, approver="maya", outcome="approve")
    await decide(first, approve)
    assert (await first.result()).proposals[0].status == "executed"

    await decide(second, approve)
    # The approval was given on a draft run; re-read at execution it is submitted: back to
    # the humans as a new exception showing what changed, nothing executed.
    sent_back = (await until_sent_back(second, states[1].proposals[0].exception_id)).proposals[0]
    assert sent_back.status == "awaiting_decision" and sent_back.failure is not None
    assert "payroll.status 'draft' -> 'submitted'" in sent_back.failure
    # Approved again on what holds now, the books refuse it once. Bounded: before the fix
    # the refusal was retried forever and this never returned.
    await decide(second, approve)
    refused = (await asyncio.wait_for(second.result(), timeout=30)).proposals[0]
    assert refused.status == "failed" and refused.failure is not None
    assert refused.failure.startswith("ActionRefusedByBooks"), refused.failure
    kinds = await _audit_kinds(db, tenant, second.id)
    assert kinds.count("action_intent") == 1 and kinds[-2:] == ["action_refused", "run_completed"]


async def test_payroll_runs_only_for_the_amount_that_was_approved(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """Approve-with-edit lowered a payroll proposal's amount; the books submitted the whole
    draft run anyway, while the audit trail said the lower amount executed. The approver of
    an irreversible action typed and approved one amount; another one moved."""
    handle = await start(client, tenant, "payroll")
    state: RunState = await until_stage(handle, "awaiting_decision")
    ps = state.proposals[0]
    assert ps.proposal.action == "run_payroll" and ps.proposal.amount == Decimal("96400.00")
    await decide(
        handle,
        {
            "proposal_id": ps.proposal.proposal_id,
            "approver": "maya",
            "outcome": "approve",
            "edit": {"amount": "1000.00"},
        },
    )
    refused = (await asyncio.wait_for(handle.result(), timeout=30)).proposals[0]
    assert refused.status == "failed" and refused.failure is not None
    assert refused.failure.startswith("ActionRefusedByBooks") and "96400" in refused.failure
    async with db.tenant(tenant) as conn:
        status = await conn.fetchval(
            "SELECT status FROM charter.payroll_runs WHERE tenant_id = $1 AND payroll_run_id = $2",
            tenant,
            ps.proposal.reference,
        )
    assert status == "draft"
