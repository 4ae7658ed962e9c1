"""At execution, a limit counts the ledger's spend in every currency, converted with the rates
the run's observation recorded; spend no recorded rate converts sends the payment to a human."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from activities import ActActivities, Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database, audit_trail, runs
from schemas import ActInput, ExchangeRate, Observation
from tests.support.spend_limits import (
    DAILY_CAP,
    add_vendor_invoices,
    executed_total,
    gated,
    outcome,
    with_limits,
)
from tests.support.vault import session_vault

pytestmark = pytest.mark.db


async def _spent_in_euros(db: Database, tenant: str, amount: str) -> None:
    """An autonomous payment of `amount` EUR executed an hour ago."""
    now = datetime.now(UTC)
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "INSERT INTO charter.spend_ledger (tenant_id, idempotency_key, workflow_id, "
            "proposal_id, agent, action, payee, amount, currency, autonomous, state, "
            "reserved_at, expires_at, executed_at) VALUES ($1, $2, 'charter/earlier', 'p1', "
            "'payables', 'schedule_payment', 'vendor:eu', $3, 'EUR', true, 'executed', $4, $5, $4)",
            tenant,
            uuid.uuid4().hex,
            Decimal(amount),
            now - timedelta(hours=1),
            now + timedelta(hours=1),
        )


async def _observed_with(db: Database, req: ActInput, rates: list[ExchangeRate]) -> None:
    """The run's `observed` entry, as the read activity records it, with `rates`."""
    run = req.run
    seen = Observation(
        tenant_id=run.tenant_id,
        agent=run.agent,
        observed_at=datetime.now(UTC),
        source="demo",
        rates=rates,
    )
    async with db.tenant(run.tenant_id) as conn:
        await audit_trail.append(
            conn,
            run.tenant_id,
            "observed",
            seen.model_dump(mode="json"),
            actor="agent:payables",
            workflow_id=run.workflow_id,
            run_id=run.run_id,
        )


def _euro(rate: str) -> ExchangeRate:
    return ExchangeRate(
        currency="EUR", base="USD", rate=Decimal(rate), source="treasury", as_of=datetime.now(UTC)
    )


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ([], "BackToHumans"),  # 3,800 EUR cannot be counted without a rate
        (["1.10"], "BackToHumans"),  # 4,180 USD + 900 USD > 5,000 USD
        (["1.00"], "executed"),  # 3,800 USD + 900 USD fits
    ],
    ids=["no rate recorded", "over at the recorded rate", "fits at the recorded rate"],
)
async def test_the_daily_cap_counts_euro_spend_at_the_runs_recorded_rate(
    db: Database, tenant: str, rates: list[str], expected: str
) -> None:
    law = await with_limits(db, tenant, DAILY_CAP)
    [invoice] = await add_vendor_invoices(db, tenant, 1, Decimal("900.00"))
    await _spent_in_euros(db, tenant, "3800.00")
    req = await gated(db, tenant, law, 0, invoice)
    await _observed_with(db, req, [_euro(r) for r in rates])
    act = ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))
    assert await outcome(act, req) == expected
    assert await executed_total(db, tenant) == (Decimal("900.00") if rates == ["1.00"] else 0)
    if expected == "BackToHumans":
        async with db.tenant(tenant) as conn:
            exception = await runs.latest_exception(
                conn, tenant, req.run.workflow_id, req.proposal.proposal_id
            )
        assert exception is not None
        [breach] = exception["context"]["at_execution"]["limits"]
        assert breach["unpriced"] == ([] if rates else ["EUR"])
        assert breach["spent"] == ("4180.00" if rates else "0")
