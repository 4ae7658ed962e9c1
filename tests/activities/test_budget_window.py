"""Budget changes do not compound across runs.

Each run may change a campaign's daily budget by at most 25%, judged against the budget in
force; three runs of +25% would take 400 to 781.25. The demo constitution also bounds the
change against the budget seven days ago (`campaign.budget_7d_ago`, from Charter's own record
of the changes it executed), so past the first +25% the next runs go to a human.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps
from charter.storage import Database
from schemas import ProposedAction
from tests.support.held_reasoner import HeldReasoner
from tests.support.running import start, until_stage
from tests.support.vault import session_vault
from worker import build_worker

QUEUE = "charter-budget-window"


@pytest.fixture(scope="module")
def held() -> HeldReasoner:
    return HeldReasoner()


@pytest.fixture(scope="module")
async def budget_worker(client: Client, db: Database, held: HeldReasoner) -> AsyncIterator[Worker]:
    async with build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=held), QUEUE
    ) as w:
        yield w


def raise_budget(to: Decimal) -> ProposedAction:
    return ProposedAction(
        action="adjust_campaign_budget",
        amount=to,
        counterparty="Holiday retargeting",
        reference="cmp-holiday",
        confidence=0.99,
        rationale="+25%, strong ROAS",
        citations=["allow-budget-tuning"],
    )


async def budget(db: Database, tenant: str) -> Decimal:
    async with db.tenant(tenant) as conn:
        value = await conn.fetchval(
            "SELECT daily_budget FROM charter.ad_campaigns WHERE tenant_id = $1 AND "
            "campaign_id = 'cmp-holiday'",
            tenant,
        )
    return Decimal(value)


async def test_three_runs_cannot_compound_a_budget_past_the_window_bound(
    client: Client, budget_worker: Worker, held: HeldReasoner, db: Database, tenant: str
) -> None:
    start_budget = await budget(db, tenant)
    assert start_budget == Decimal("400")
    held.release(tenant)
    statuses = []
    for _ in range(3):
        # Each run asks for +25% of the budget in force: allowed by the per-run bound alone.
        held.script(tenant, [raise_budget(await budget(db, tenant) * Decimal("1.25"))])
        handle = await start(client, tenant, "marketing", task_queue=QUEUE)
        state = await until_stage(handle, "awaiting_decision", "completed")
        [ps] = state.proposals
        statuses.append(ps.status)
        if ps.status == "awaiting_decision":
            assert ps.verdict is not None and ps.verdict.outcome == "escalate"
            await handle.terminate("a human would decide")
    assert statuses == ["executed", "awaiting_decision", "awaiting_decision"]
    assert await budget(db, tenant) == Decimal("500") <= start_budget * Decimal("1.25")
    async with db.tenant(tenant) as conn:
        recorded = await conn.fetch(
            "SELECT budget_before, budget_after FROM charter.budget_changes WHERE tenant_id = $1",
            tenant,
        )
    assert [(r["budget_before"], r["budget_after"]) for r in recorded] == [
        (Decimal("400"), Decimal("500"))
    ]
