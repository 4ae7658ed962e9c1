"""An approval with an amendment: the next identical case executes on its own under the new
version; a different counterparty still escalates; a deny can never be approved away."""

from __future__ import annotations

from decimal import Decimal

from temporalio.client import Client
from temporalio.worker import Worker

from charter.demo.seed import LATE_INVOICE, add_invoice
from charter.storage import Database, constitution_versions
from schemas import AmendmentRequest, Decision, DecisionReceipt
from tests.support.decided_runs import update_error
from tests.support.running import chain_ok, start, until_stage
from tests.support.signing import decide


async def test_amendment_executes_the_next_identical_case(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    first = await start(client, tenant, "payables", focus=["INV-1043"])
    await until_stage(first, "awaiting_decision")
    receipt = await decide(
        first,
        Decision(
            proposal_id="p1",
            approver="maya",
            outcome="approve",
            reason="Bluebird is our design studio",
            amendment=AmendmentRequest(max_amount=Decimal("2500")),
        ),
        result_type=DecisionReceipt,
    )
    assert receipt.amendment_version == 2
    assert (await first.result()).proposals[0].status == "executed"

    # Same class of exception (same vendor, within the bound): executes on its own.
    await add_invoice(db, tenant, LATE_INVOICE)
    # A different unverified counterparty, within the same amount.
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "INSERT INTO charter.vendors (tenant_id, vendor_id, name, verified) "
            "VALUES ($1, 'shady', 'Shady Print Co', false)",
            tenant,
        )
    await add_invoice(db, tenant, ("INV-2001", "shady", Decimal("1950.00"), 16, "open", "Flyers"))
    second = await start(client, tenant, "payables", focus=["INV-1047", "INV-2001"])
    state = await until_stage(second, "awaiting_decision")
    by_ref = {p.proposal.reference: p for p in state.proposals}
    same, other = by_ref["INV-1047"], by_ref["INV-2001"]
    assert same.verdict is not None and same.verdict.constitution_version == 2
    assert same.verdict.outcome == "execute"
    assert any(m.rule_id.startswith("amend-") for m in same.verdict.matched)
    assert other.verdict is not None and other.verdict.causes == ["outside_bounds"]
    await second.terminate("test done")

    async with db.tenant(tenant) as conn:
        history = await constitution_versions.history(conn, tenant)
        amended = await constitution_versions.get(conn, tenant, 2)
    assert [v.version for v in history] == [1, 2]
    assert history[1].created_by == "maya" and history[1].source.startswith("amendment from ex-")
    assert amended.document.rules[-1].amendment is not None
    await chain_ok(db, tenant)


async def test_a_running_denied_proposal_refuses_approval(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    # INV-1039 is denied and INV-1043 keeps the run open, awaiting a decision.
    handle = await start(client, tenant, "payables", focus=["INV-1039", "INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    denied = next(p for p in state.proposals if p.status == "denied")
    error = await update_error(
        handle,
        Decision(proposal_id=denied.proposal.proposal_id, approver="maya", outcome="approve"),
    )
    assert error.type == "NotAwaitingDecision"
    await handle.terminate("test done")
