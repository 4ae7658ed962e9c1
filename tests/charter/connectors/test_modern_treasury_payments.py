"""Paying bills through Modern Treasury (its stand-in), exactly once whatever fails.

Each run here auto-executes INV-1042 (Figma, verified, under the auto-pay limit) or takes
an approval for INV-1044 (over $10,000), so the act activity talks to the stand-in through the official SDK.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps
from charter.connectors.modern_treasury import PROVIDER
from charter.connectors.modern_treasury.payments import KEY_FIELD, REFERENCE_FIELD
from charter.reasoners import OfflineReasoner
from charter.services import execution
from charter.storage import Database, audit_trail, ledger
from charter.storage import credential_vault as creds
from schemas import Decision
from tests.support.paying import paid_by_one_order, pay_through, pending
from tests.support.queues import TASK_QUEUE
from tests.support.running import audit_kinds, start, until_stage
from tests.support.signing import decide
from tests.support.standins.modern_treasury import Fault, ModernTreasuryStandIn
from tests.support.vault import session_vault
from worker import build_worker


async def _run_figma(client: Client, db: Database, tenant: str) -> tuple[str, str]:
    """Run payables on INV-1042; return (proposal status, connector reference)."""
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    result = await asyncio.wait_for(handle.result(), timeout=120)
    (ps,) = result.proposals
    assert ps.status == "executed", ps.failure
    assert ps.action is not None
    kinds = await audit_kinds(db, tenant, handle.id)
    assert kinds.index("action_intent") < kinds.index("action_result")
    return ps.status, ps.action.connector_reference


async def test_a_bill_is_paid_by_one_payment_order_with_the_key_in_its_metadata(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    await pay_through(db, tenant, mt)
    _, reference = await _run_figma(client, db, tenant)
    (order,) = mt.payment_orders
    assert order["id"] == reference
    assert order["amount"] == 144000 and order["currency"] == "USD"
    assert order["metadata"][REFERENCE_FIELD] == "INV-1042"
    assert len(order["metadata"][KEY_FIELD]) == 32
    assert await pending(db, tenant) == []


FAULTS = {
    # The answer is lost after the order was created; no SDK retry: found by metadata.
    "timeout after apply": ([Fault("delay", seconds=3)], {"timeout": "1", "max_retries": "0"}),
    # The SDK re-sends with the same Idempotency-Key: the stand-in returns the same order.
    "timeout after apply, retried": ([Fault("delay", seconds=3)], {"timeout": "1"}),
    "connection reset after apply": ([Fault("reset")], {"max_retries": "0"}),
    "500 after apply": ([Fault("error_500")], {}),
    "500 after apply, key forgotten": ([Fault("error_500")], {"max_retries": "0"}),
    # Storms longer than the SDK's retries: the activity retries, and looks before creating.
    "503 storm": ([Fault("reject_503", times=5)], {}),
    "429 storm": ([Fault("reject_429", times=4, seconds=1)], {}),
    "429 on lookups": ([Fault("reject_429", method="GET", times=4, seconds=1)], {}),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_one_payment_order_whatever_the_provider_does(
    name: str, client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    faults, settings = FAULTS[name]
    mt.faults.extend(faults)
    mt.forget_idempotency_keys = "forgotten" in name
    await pay_through(db, tenant, mt, **settings)
    _, reference = await _run_figma(client, db, tenant)
    assert [o["id"] for o in mt.payment_orders] == [reference]
    assert mt.faults == [], "the fault never fired: the test proves nothing"
    assert await pending(db, tenant) == []


async def test_two_runs_approving_the_same_bill_make_one_payment(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    await pay_through(db, tenant, mt)
    first = await start(client, tenant, "payables", focus=["INV-1044"])
    second = await start(client, tenant, "payables", focus=["INV-1044"])
    for handle in (first, second):
        await until_stage(handle, "awaiting_decision")
    approve = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="due")
    await asyncio.gather(decide(first, approve), decide(second, approve))
    results = [(await h.result()).proposals[0] for h in (first, second)]
    # One payment of the bill, one key: the run that comes second finds it made.
    await paid_by_one_order(db, tenant, mt, "INV-1044", results)


async def test_a_revoked_write_credential_fails_the_proposal_and_pays_nothing(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    await pay_through(db, tenant, mt)
    async with db.tenant(tenant) as conn:
        write = await creds.active_id(conn, tenant, PROVIDER, "write")
        assert write is not None
        await creds.revoke(conn, tenant, write)
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=60)).proposals
    assert ps.status == "failed" and ps.failure is not None
    assert ps.failure.startswith("CredentialUnavailable") and "write credential" in ps.failure
    assert mt.payment_orders == [] and ("POST", "/api/payment_orders") not in mt.requests


async def test_a_payee_without_a_verified_account_escalates_and_is_not_paid(
    client: Client, worker: Worker, db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    """Verification is the payments provider's: the observation says so, the gate escalates,
    and when a human approves anyway the writer re-checks it at the moment of paying."""
    figma = next(c for c in mt.counterparties if c["name"] == "Figma")
    figma["accounts"][0]["verification_status"] = "pending_verification"
    await pay_through(db, tenant, mt)
    handle = await start(client, tenant, "payables", focus=["INV-1042"])
    state = await until_stage(handle, "awaiting_decision")
    (waiting,) = state.proposals
    assert waiting.verdict is not None and waiting.verdict.outcome == "escalate"
    approve = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="known")
    await decide(handle, approve)
    (ps,) = (await asyncio.wait_for(handle.result(), timeout=60)).proposals
    assert ps.status == "failed" and ps.failure is not None
    assert ps.failure.startswith("ActionRefusedByBooks") and "no single verified" in ps.failure
    assert mt.payment_orders == []


async def test_a_payment_the_provider_made_is_recorded_though_a_retry_would_judge_otherwise(
    client: Client, db: Database, tenant: str, mt: ModernTreasuryStandIn, monkeypatch: Any
) -> None:
    """The provider pays, then the answer comes after the spend reservation lapsed. A retry
    would re-judge on facts now too old for an autonomous payment and send it to a human,
    although the money has moved: the attempt that got the answer records it, the lapsed
    reservation counted as executed spend all the same."""
    monkeypatch.setattr(execution, "RESERVATION_TTL", timedelta(seconds=1))
    mt.faults.append(Fault("delay", seconds=3))
    await pay_through(db, tenant, mt, timeout="10", max_retries="0")
    queue = f"{TASK_QUEUE}-late-{tenant}"
    deps = Deps(
        credentials=session_vault(),
        db=db,
        reasoner=OfflineReasoner(),
        max_observation_age=timedelta(seconds=2.5),
    )
    async with build_worker(client, deps, queue):
        handle = await start(client, tenant, "payables", focus=["INV-1042"], task_queue=queue)
        (ps,) = (await asyncio.wait_for(handle.result(), timeout=120)).proposals
    assert mt.faults == [], "the late answer never came: the test proves nothing"
    (order,) = mt.payment_orders
    assert ps.status == "executed", ps.failure
    assert ps.action is not None and ps.action.connector_reference == order["id"]
    async with db.tenant(tenant) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant) if e.workflow_id == handle.id]
        spent = await ledger.entries(conn, tenant)
    kinds = [e.kind for e in entries]
    assert "exception_opened" not in kinds and "action_refused" not in kinds
    (result,) = [e for e in entries if e.kind == "action_result"]
    assert result.snapshot["reservation_lapsed"] is True
    (state,) = [state for state, _ in spent.values()]
    assert state == "executed"
    assert await pending(db, tenant) == []
