"""The stale-facts and stale-law attacks: nothing executes on an outdated judgement.

The model holds its reply while the books change (a budget cut, a vendor unverified, the
invoice paid elsewhere, another run's spend) or an owner applies a stricter version. The
workflow's gate judges the frozen observation and would allow it; the act activity re-reads
the facts under row locks, re-judges under the pinned and the current version and against
the limits, and sends the proposal back to a human (or refuses it) instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from activities import Deps
from charter.governance.constitution import parse_document
from charter.slack.cards import card_blocks
from charter.storage import Database, constitution_versions, runs, slack_cards
from schemas import Decision, ProposedAction
from tests.support.held_reasoner import HeldReasoner
from tests.support.owner import as_owner
from tests.support.running import record_history, start, until_sent_back, until_stage
from tests.support.signing import signed
from tests.support.spend_limits import DAILY_CAP, with_limits
from tests.support.told import Told
from tests.support.vault import session_vault
from worker import build_worker
from workflows import AgentLoop

QUEUE = "charter-held"
#: A worker that lets an autonomous action execute on an observation at most a second old.
IMPATIENT_QUEUE = "charter-held-impatient"


@pytest.fixture(scope="module")
def held() -> HeldReasoner:
    return HeldReasoner()


@pytest.fixture(scope="module")
async def held_worker(client: Client, db: Database, held: HeldReasoner) -> AsyncIterator[Worker]:
    async with build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=held), QUEUE
    ) as w:
        yield w


@pytest.fixture(scope="module")
async def impatient_worker(
    client: Client, db: Database, held: HeldReasoner
) -> AsyncIterator[Worker]:
    deps = Deps(
        credentials=session_vault(), db=db, reasoner=held, max_observation_age=timedelta(seconds=1)
    )
    async with build_worker(client, deps, IMPATIENT_QUEUE) as w:
        yield w


def pay(reference: str, amount: str, counterparty: str) -> ProposedAction:
    return ProposedAction(
        action="schedule_payment",
        amount=Decimal(amount),
        counterparty=counterparty,
        reference=reference,
        confidence=0.99,
        rationale="Due soon.",
        citations=["allow-verified-vendor-bills"],
    )


async def execute(db: Database, tenant: str, sql: str, *args: Any) -> None:
    async with db.tenant(tenant) as conn:
        await conn.execute(sql, tenant, *args)


async def cut_budget(db: Database, tenant: str) -> None:
    await execute(
        db,
        tenant,
        "UPDATE charter.ad_campaigns SET daily_budget = 300 WHERE tenant_id = $1 AND "
        "campaign_id = 'cmp-holiday'",
    )


async def unverify_figma(db: Database, tenant: str) -> None:
    await execute(
        db,
        tenant,
        "UPDATE charter.vendors SET verified = false WHERE tenant_id = $1 AND vendor_id = 'figma'",
    )


async def pay_elsewhere(db: Database, tenant: str) -> None:
    await execute(
        db,
        tenant,
        "INSERT INTO charter.payments (tenant_id, payment_id, account_id, invoice_id, "
        "counterparty, amount, status, value_date) VALUES ($1, 'card-1', 'operating', "
        "'INV-1041', 'Amazon Web Services', 3412.18, 'settled', current_date)",
    )


async def stricter_law(db: Database, tenant: str) -> None:
    async with as_owner(db, tenant) as conn:
        latest = await constitution_versions.get(conn, tenant)
        raw = latest.document.model_dump(mode="json", exclude_none=True)
        for rule in raw["rules"]:
            if rule["id"] == "allow-verified-vendor-bills":
                rule["when"] = rule["when"].replace("5000.0", "1000.0")
        await constitution_versions.save(
            conn, tenant, parse_document(raw), source="test", created_by="maya"
        )


async def spent_elsewhere(db: Database, tenant: str) -> None:
    """Another run's autonomous payment, as Charter's ledger recorded it."""
    await execute(
        db,
        tenant,
        "INSERT INTO charter.spend_ledger (tenant_id, idempotency_key, workflow_id, "
        "proposal_id, agent, action, payee, amount, currency, autonomous, state, reserved_at, "
        "expires_at, executed_at) VALUES ($1, 'other-run', 'wf-other', 'p1', 'payables', "
        "'schedule_payment', 'vendor:aws', 4000, 'USD', true, 'executed', now(), now(), now())",
    )


@dataclass(frozen=True)
class Stale:
    name: str
    proposal: ProposedAction
    meanwhile: Callable[[Database, str], Awaitable[None]]
    status: str
    says: str
    agent: str = "payables"
    limits: bool = False


CASES = [
    Stale(
        "budget-cut",
        ProposedAction(
            action="adjust_campaign_budget",
            amount=Decimal("500"),
            counterparty="Holiday retargeting",
            reference="cmp-holiday",
            confidence=0.99,
            rationale="+25%",
            citations=["allow-budget-tuning"],
        ),
        cut_budget,
        "awaiting_decision",
        "outside bounds",
        agent="marketing",
    ),
    Stale(
        "vendor-unverified",
        pay("INV-1042", "1440.00", "Figma"),
        unverify_figma,
        "awaiting_decision",
        "outside bounds",
    ),
    Stale(
        "paid-elsewhere",
        pay("INV-1041", "3412.18", "Amazon Web Services"),
        pay_elsewhere,
        "failed",
        "deny-already-paid",
    ),
    Stale(
        "stricter-law",
        pay("INV-1042", "1440.00", "Figma"),
        stricter_law,
        "awaiting_decision",
        "v2: Escalated: outside bounds",
    ),
    Stale(
        "cross-run-cap",
        pay("INV-1042", "1440.00", "Figma"),
        spent_elsewhere,
        "awaiting_decision",
        "autonomous-daily",
        limits=True,
    ),
]


async def books(db: Database, tenant: str) -> tuple[Any, ...]:
    async with db.tenant(tenant) as conn:
        return (
            await conn.fetchval(
                "SELECT count(*) FROM charter.payments WHERE tenant_id = $1 AND payment_id "
                "LIKE 'pay-%'",
                tenant,
            ),
            await conn.fetchval(
                "SELECT count(*) FROM charter.actions WHERE tenant_id = $1", tenant
            ),
            await conn.fetchval(
                "SELECT daily_budget FROM charter.ad_campaigns WHERE tenant_id = $1 AND "
                "campaign_id = 'cmp-holiday'",
                tenant,
            ),
        )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_nothing_executes_on_a_stale_judgement(
    client: Client, held_worker: Worker, held: HeldReasoner, db: Database, tenant: str, case: Stale
) -> None:
    if case.limits:
        await with_limits(db, tenant, DAILY_CAP)
    held.script(tenant, [case.proposal])
    handle = await start(client, tenant, case.agent, task_queue=QUEUE)
    await held.observed[tenant].wait()
    await case.meanwhile(db, tenant)
    held.release(tenant)
    state = await until_stage(handle, "awaiting_decision", "completed")
    [ps] = state.proposals
    assert ps.verdict is not None and ps.verdict.outcome == "execute"  # the stale judgement
    assert ps.status == case.status, ps.failure
    assert ps.failure is not None and case.says in ps.failure, ps.failure
    payments, actions, budget = await books(db, tenant)
    assert (payments, actions) == (0, 0)
    assert budget == (Decimal("300") if case.name == "budget-cut" else Decimal("400"))
    if ps.status == "awaiting_decision":
        async with db.tenant(tenant) as conn:
            exception = await runs.get_exception(
                conn, tenant, runs.exception_id_for(handle.id, "p1")
            )
        assert exception is not None and exception["status"] == "open"
        shown = exception["context"]["at_execution"]
        assert shown["outcome"] == "decide" and case.says in shown["reason"]
        if not case.limits:  # what it was judged on, and what it is judged on now
            assert shown["changed"]["judged"]["outcome"] == "execute"
            assert any(v["outcome"] != "execute" for v in shown["changed"]["now"])
    if case.name == "cross-run-cap":
        # A human may approve what the autonomous cap held back: it is no longer autonomous.
        await handle.execute_update(
            AgentLoop.decide,
            await signed(
                handle,
                Decision(proposal_id="p1", approver="maya", outcome="approve", reason="expected"),
            ),
        )
        result = await handle.result()
        assert result.proposals[0].status == "executed"
        async with db.tenant(tenant) as conn:
            kind = await conn.fetchval(
                "SELECT authorisation->>'kind' FROM charter.actions WHERE tenant_id = $1", tenant
            )
        assert kind == "approval"
        await record_history(handle, "act_sends_back_to_humans")
    elif (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("stale-facts case finished")


async def escalated(client: Client, held: HeldReasoner, tenant: str, queue: str) -> tuple[Any, Any]:
    """A run whose one payment (to an unverified vendor) waits for a human, and its state."""
    held.script(tenant, [pay("INV-1043", "2300.00", "Bluebird Design Studio")])
    held.release(tenant)
    handle = await start(client, tenant, "payables", task_queue=queue)
    return handle, await until_stage(handle, "awaiting_decision")


async def test_an_approval_covers_only_the_facts_it_was_shown(
    client: Client, held_worker: Worker, held: HeldReasoner, db: Database, tenant: str
) -> None:
    handle, state = await escalated(client, held, tenant, QUEUE)
    assert state.proposals[0].status == "awaiting_decision"  # an unverified vendor
    first = state.proposals[0].exception_id
    # After the exception showed the invoice, the books change under it.
    await execute(
        db,
        tenant,
        "UPDATE charter.invoices SET amount = 2600 WHERE tenant_id = $1 AND invoice_id = 'INV-1043'",
    )
    await handle.execute_update(
        AgentLoop.decide,
        await signed(handle, Decision(proposal_id="p1", approver="maya", outcome="approve")),
    )
    # Back to the humans as a new exception showing what changed; nothing executed.
    state = await until_sent_back(handle, first)
    [ps] = state.proposals
    assert ps.status == "awaiting_decision" and ps.failure is not None
    assert "invoice.amount 2300.0 -> 2600.0" in ps.failure, ps.failure
    assert ps.exception_id == f"{first}-2" and ps.decisions == []
    assert (await books(db, tenant))[:2] == (0, 0)
    async with db.tenant(tenant) as conn:
        old = await runs.get_exception(conn, tenant, first or "")
        new = await runs.get_exception(conn, tenant, ps.exception_id)
        # The old approval does not count for the new exception.
        assert (
            await runs.approvals(conn, tenant, handle.id, "p1", runs.proposal_digest(ps.proposal))
            == []
        )
    assert old is not None and old["status"] == "approved"
    assert new is not None and new["status"] == "open" and new["context"]["supersedes"] == first
    changed = new["context"]["at_execution"]["changed"]
    assert changed["invoice.amount"] == {"approved": 2300.0, "now": 2600.0}, changed
    assert new["context"]["observed"]["invoice"]["amount"] == 2600.0
    # The same member decides again, on what holds now, and it executes.
    await handle.execute_update(
        AgentLoop.decide,
        await signed(handle, Decision(proposal_id="p1", approver="maya", outcome="approve")),
    )
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    async with db.tenant(tenant) as conn:
        authorisation = await conn.fetchval(
            "SELECT authorisation::text FROM charter.actions WHERE tenant_id = $1 AND "
            "workflow_id = $2",
            tenant,
            handle.id,
        )
    assert json.loads(authorisation)["exception_id"] == ps.exception_id
    await record_history(handle, "approval_sent_back_beside_the_wait")


async def test_an_observation_older_than_the_maximum_age_goes_to_a_human(
    client: Client, impatient_worker: Worker, held: HeldReasoner, db: Database, tenant: str
) -> None:
    # Nothing decisive changes: only the observation the model reasoned on ages.
    held.script(tenant, [pay("INV-1042", "1440.00", "Figma")])
    handle = await start(client, tenant, "payables", task_queue=IMPATIENT_QUEUE)
    await held.observed[tenant].wait()
    await asyncio.sleep(1.5)
    held.release(tenant)
    state = await until_stage(handle, "awaiting_decision", "completed")
    [ps] = state.proposals
    assert ps.verdict is not None and ps.verdict.outcome == "execute"
    assert ps.status == "awaiting_decision", ps.failure
    assert ps.failure is not None and "older than the 1s" in ps.failure, ps.failure
    assert (await books(db, tenant))[:2] == (0, 0)
    async with db.tenant(tenant) as conn:
        exception = await runs.get_exception(conn, tenant, ps.exception_id or "")
    assert exception is not None
    # The human decides on facts re-read at the act, not on the aged observation.
    assert (
        exception["context"]["observed_at"]
        > exception["context"]["at_execution"]["changed"]["observed_at"]
    )
    await handle.terminate("max-age case finished")


#: A worker that sends one proposal back to humans at most twice.
BOUNDED_QUEUE = "charter-held-bounded"


async def test_a_send_back_loop_stops_at_the_bound_with_every_change_listed(
    client: Client, db: Database, held: HeldReasoner, tenant: str
) -> None:
    """Each approval is overtaken by a move of the books; after two send-backs the third
    move closes the proposal as facts_unstable instead of asking a fourth approval."""
    told = Told()
    deps = Deps(credentials=session_vault(), db=db, reasoner=held, max_send_backs=2, notifier=told)
    async with build_worker(client, deps, BOUNDED_QUEUE):
        handle, state = await escalated(client, held, tenant, BOUNDED_QUEUE)
        exception_id = state.proposals[0].exception_id
        for amount in (2400, 2500, 2600):
            await execute(
                db,
                tenant,
                f"UPDATE charter.invoices SET amount = {amount} WHERE tenant_id = $1 "
                "AND invoice_id = 'INV-1043'",
            )
            approval = Decision(proposal_id="p1", approver="maya", outcome="approve")
            await handle.execute_update(AgentLoop.decide, await signed(handle, approval))
            if amount == 2600:
                break
            state = await until_sent_back(handle, exception_id)
            exception_id = state.proposals[0].exception_id
        result = await handle.result()
    [ps] = result.proposals
    assert ps.status == "failed" and ps.failure is not None
    assert ps.failure.startswith(
        "FactsUnstable: closed as facts_unstable: sent back 2 times (at most 2)"
    ), ps.failure
    for n, (before, now) in enumerate([(2300, 2400), (2400, 2500), (2500, 2600)], start=1):
        assert f"{n}. " in ps.failure and f"invoice.amount {before}.0 -> {now}.0" in ps.failure
    assert exception_id is not None and exception_id.endswith("-3")
    assert (await books(db, tenant))[:2] == (0, 0)
    async with db.tenant(tenant) as conn:
        assert len(await runs.sent_back(conn, tenant, handle.id, "p1")) == 2
        card = await slack_cards.card_state(conn, tenant, exception_id)
    # The approvers are told: the last exception they decided shows the closure, and the
    # notifier was asked to say so.
    assert ("closed", exception_id) in told.notices
    assert card is not None and card.closed_unstable == ps.failure.removeprefix("FactsUnstable: ")
    text = json.dumps(card_blocks(card, ui_url="http://ui", namespace="default", run_id="r"))
    assert "Closed without executing" in text and "Executing" not in text


async def test_an_approval_with_a_tolerance_survives_a_move_within_it(
    client: Client, held_worker: Worker, held: HeldReasoner, db: Database, tenant: str
) -> None:
    """The approver let the invoice move by 5%: it moved by 2%, and the approval holds."""
    handle, state = await escalated(client, held, tenant, QUEUE)
    first = state.proposals[0].exception_id
    await execute(
        db,
        tenant,
        "UPDATE charter.invoices SET amount = 2346 WHERE tenant_id = $1 AND invoice_id = 'INV-1043'",
    )
    approval = Decision(
        proposal_id="p1",
        approver="maya",
        outcome="approve",
        tolerance={"invoice.amount": Decimal("0.05"), "invoice.outstanding": Decimal("0.05")},
    )
    await handle.execute_update(AgentLoop.decide, await signed(handle, approval))
    result = await handle.result()
    [ps] = result.proposals
    assert ps.status == "executed" and ps.exception_id == first, ps.failure
    async with db.tenant(tenant) as conn:
        [statement] = await runs.approval_statements(
            conn, tenant, handle.id, "p1", runs.proposal_digest(ps.proposal)
        )
    assert json.loads(statement)["tolerance"] == {
        "invoice.amount": "0.05",
        "invoice.outstanding": "0.05",
    }
