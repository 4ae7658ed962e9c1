"""Paying against a Modern Treasury that behaves as documented: keys saved only once a
request completes, scoped to the API key and forgotten after their retention, and lists
that lag. One order per bill, whatever fails; what Charter cannot settle goes to a human.

INV-1042 (Figma, under the auto-pay limit) executes on its own; INV-1044 needs maya.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from charter.storage import Database, audit_trail, runs
from schemas import AgentRunResult, Decision
from tests.support.paying import paid_by_one_order, pay_through, pending
from tests.support.running import start, until_sent_back, until_stage
from tests.support.signing import decide
from tests.support.standins.modern_treasury import Fault, ModernTreasuryStandIn

POST = ("POST", "/api/payment_orders")


async def _result(handle: WorkflowHandle[Any, AgentRunResult]) -> AgentRunResult:
    return await asyncio.wait_for(handle.result(), timeout=180)


async def _escalation(db: Database, tenant: str, handle: WorkflowHandle[Any, Any]) -> Any:
    async with db.tenant(tenant) as conn:
        exception = await runs.latest_exception(conn, tenant, handle.id, "p1")
    assert exception is not None and exception["status"] == "open"
    return exception["context"]["escalation"]


async def test_a_write_is_never_resent_by_the_sdk_behind_charters_back(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    """The answer comes after the client gave up, and the key is saved only then: an SDK
    retry (2 by default) would have made a second order. Charter looks it up instead."""
    mt.faults.append(Fault("delay", seconds=3))
    await pay_through(db, tenant, mt, timeout="1", max_retries="2")
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    (ps,) = (await _result(handle)).proposals
    assert ps.status == "executed", ps.failure
    (order,) = mt.payment_orders
    assert mt.requests.count(POST) == 1
    assert ps.action is not None and ps.action.connector_reference == order["id"]
    assert await pending(db, tenant) == []


async def test_two_runs_racing_on_one_bill_pay_it_once_though_keys_are_forgotten(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    """Both runs compute the bill's one key. The provider no longer dedups it and its list
    lags: a run that finds nothing trusts that only once the lag has passed since the other
    run's attempt, and by then the other's order shows."""
    mt.forget_idempotency_keys = True
    mt.list_lag = 2.0
    await pay_through(db, tenant, mt, timeout="2")
    handles = await asyncio.gather(
        *(start(client, tenant, "payables", focus=["INV-1042"]) for _ in range(2))
    )
    results = [(await _result(h)).proposals[0] for h in handles]
    await paid_by_one_order(db, tenant, mt, "INV-1042", results)


async def test_past_the_keys_retention_an_unknown_outcome_goes_to_a_human(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    """A 5xx at create: the order may or may not exist. By the time the provider's list can
    be trusted, it may have forgotten the key (a retention shorter than the list lag stands
    in for a day): nothing is sent again. An exception asks a human, and the intent stays
    pending for reconciliation."""
    mt.faults.append(Fault("reject_503"))
    await pay_through(
        db,
        tenant,
        mt,
        timeout="1",
        key_retention_hours="0.0002",
        key_retention_margin_minutes="0",
    )
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    state = await until_stage(handle, "awaiting_decision")
    (waiting,) = state.proposals
    assert waiting.status == "awaiting_decision" and waiting.failure is not None
    assert "unknown" in waiting.failure and "charter actions reconcile" in waiting.failure
    escalation = await _escalation(db, tenant, handle)
    assert escalation["kind"] == "outcome_unknown" and escalation["attempts"] >= 1
    assert mt.faults == [] and mt.requests.count(POST) == 1 and mt.payment_orders == []
    assert await pending(db, tenant) == [escalation["idempotency_key"]]
    async with db.tenant(tenant) as conn:
        kinds = [e.kind async for e in audit_trail.entries(conn, tenant)]
    assert "action_escalated" in kinds and "action_refused" not in kinds
    await handle.terminate("test over")


async def test_a_provider_refusing_an_approved_payment_opens_an_exception_with_its_error(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    """A 422 at create: nothing paid, and the approvers see the provider's own words
    instead of a proposal failed as "refused by the books"."""
    await pay_through(db, tenant, mt, originating_account_id="no-such-account")
    handle = await start(client, tenant, "payables", focus=["INV-1044"])
    state = await until_stage(handle, "awaiting_decision")
    first = state.proposals[0].exception_id
    approve = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="due")
    await decide(handle, approve)
    state = await until_sent_back(handle, first)
    (waiting,) = state.proposals
    assert waiting.status == "awaiting_decision"
    escalation = await _escalation(db, tenant, handle)
    assert escalation["kind"] == "provider_refused" and escalation["status"] == 422
    assert "Originating account not found" in escalation["provider_error"]
    assert mt.payment_orders == [] and mt.requests.count(POST) == 1
    assert await pending(db, tenant) == []
    await handle.terminate("test over")
