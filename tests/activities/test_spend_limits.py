"""Limits enforced at execution: the act activity reserves atomically with its intent.

Runs gated at the same moment all see the same spend; only the reservation, serialised per
tenant in the intent's transaction, decides who fits. Real PostgreSQL, several "workers"
(activity instances with their own connection pools), the real act activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities import ActActivities, Deps
from charter.config.settings import app_dsn
from charter.connectors import ActionRefusedByBooks
from charter.connectors.demo import DemoBooksWriter
from charter.demo.seed import seed
from charter.governance import spend
from charter.governance.constitution import parse_document
from charter.reasoners import OfflineReasoner
from charter.services.audit_verification import verify_tenants
from charter.services.execution import reserve_within_limits
from charter.services.payment_keys import action_key
from charter.storage import Database, ledger
from schemas import Proposal, RunRef
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


async def test_fifty_concurrent_runs_cannot_exceed_the_daily_autonomous_cap(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    law = await with_limits(db, tenant, DAILY_CAP)
    invoices = await add_vendor_invoices(db, tenant, 50, Decimal("900.00"))
    requests = [await gated(db, tenant, law, n, i) for n, i in enumerate(invoices)]
    # Three workers, each with its own pool: the lock is in the database, not in a process.
    pools = [await Database.connect(app_dsn(admin_dsn)) for _ in range(3)]
    try:
        workers = [
            ActActivities(Deps(credentials=session_vault(), db=p, reasoner=OfflineReasoner()))
            for p in pools
        ]
        tasks = [
            asyncio.ensure_future(outcome(workers[n % 3], req)) for n, req in enumerate(requests)
        ]
        # A worker dies mid-flight: some attempts are cancelled wherever they are.
        await asyncio.sleep(0.05)
        for task in tasks[::7]:
            task.cancel()
        first = await asyncio.gather(*tasks, return_exceptions=True)
        # Retries: every run's act is attempted again, concurrently.
        again = await asyncio.gather(
            *(outcome(workers[(n + 1) % 3], req) for n, req in enumerate(requests))
        )
    finally:
        for p in pools:
            await p.close()
    assert await executed_total(db, tenant) <= Decimal("5000")
    assert await executed_total(db, tenant) == Decimal("4500.00")  # five of them fit
    assert first.count("BackToHumans") + first.count("cancelled") >= 45
    assert sorted(set(again)) <= ["BackToHumans", "NotAuthorised", "already_executed", "executed"]
    async with db.tenant(tenant) as conn:
        states = await ledger.entries(conn, tenant)
        opened = await conn.fetch(
            "SELECT context FROM charter.exceptions WHERE tenant_id = $1 AND workflow_id LIKE $2",
            tenant,
            f"charter/{tenant}/payables/%",
        )
    executed = [a for s, a in states.values() if s == "executed"]
    assert sum(executed) == Decimal("4500.00") and len(executed) == 5
    assert not [s for s, _ in states.values() if s == "reserved"]
    assert len(opened) == 45
    # The counters rebuilt from the audit trail equal the ledger; a row changed behind the
    # application's back (as the administrator) does not verify.
    (report,) = await verify_tenants(db, [tenant])
    assert report.ok, report.problem
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(
            "UPDATE charter.spend_ledger SET state = 'released' WHERE tenant_id = $1 AND "
            "state = 'executed' AND idempotency_key = (SELECT min(idempotency_key) FROM "
            "charter.spend_ledger WHERE tenant_id = $1 AND state = 'executed')",
            tenant,
        )
    finally:
        await admin.close()
    (report,) = await verify_tenants(db, [tenant])
    assert not report.ok and report.problem is not None
    assert (
        "the audit trail says executed 900.00, the ledger holds released 900.00" in report.problem
    )
    context = json.loads(opened[0]["context"])["at_execution"]
    [breach] = context["limits"]
    assert (breach["limit_id"], breach["window"], breach["spent"], breach["amount"]) == (
        "autonomous-daily",
        "P1D",
        "4500.00",
        "900.00",
    )


async def test_a_refused_action_releases_its_reservation_once(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    law = await with_limits(db, tenant, DAILY_CAP)
    [invoice] = await add_vendor_invoices(db, tenant, 1, Decimal("900.00"))
    req = await gated(db, tenant, law, 0, invoice)
    key = await action_key(db, req.run, req.proposal)

    async def refuse(*_: object) -> str:
        # The books refuse after the reservation was committed with the intent.
        raise ActionRefusedByBooks("the invoice was voided a moment ago")

    monkeypatch.setattr(DemoBooksWriter, "execute", refuse)
    act = ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))
    assert await outcome(act, req) == "ActionRefusedByBooks"
    async with db.tenant(tenant) as conn:
        assert (await ledger.entries(conn, tenant))[key] == ("released", Decimal("900.00"))
        assert not await ledger.release(conn, tenant, key, datetime.now(UTC))  # never twice
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                "SELECT kind FROM charter.audit_entries WHERE tenant_id = $1 AND workflow_id = $2 "
                "ORDER BY seq",
                tenant,
                req.run.workflow_id,
            )
        ]
        sums = await ledger.snapshot(conn, tenant, datetime.now(UTC))
    assert kinds == ["action_intent", "reservation_released", "action_refused"]
    (report,) = await verify_tenants(db, [tenant])
    assert report.ok, report.problem
    assert sums.windows["P1D"].autonomous == 0


# -- property: any interleaving of reserve / execute / refuse / expire ------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.sampled_from(["100", "250", "400", "700"])),
        st.tuples(st.just("execute"), st.integers(0, 20)),
        st.tuples(st.just("refuse"), st.integers(0, 20)),
        st.tuples(st.just("wait"), st.sampled_from([1, 11, 60 * 6, 60 * 25])),
    ),
    min_size=1,
    max_size=25,
)

LIMIT = {**DAILY_CAP, "amount": "1000"}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
async def test_no_interleaving_carries_autonomous_spend_past_a_limit(
    db: Database, admin_dsn: str, ops: list[tuple[str, Any]]
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await seed(
        db, tenant, template="acme", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    document = parse_document(
        {
            "action_types": {"schedule_payment": {"reversible": True, "spends": True}},
            "rules": [],
            "limits": [LIMIT],
        }
    )
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    keys: list[str] = []
    run = RunRef(tenant_id=tenant, agent="payables", workflow_id="wf", run_id="r")
    for op, arg in ops:
        async with db.tenant(tenant) as conn:
            await ledger.lock(conn, tenant)
            if op == "reserve":
                key = f"k{len(keys)}"
                proposal = Proposal(
                    proposal_id="p1", action="schedule_payment", amount=Decimal(arg),
                    counterparty="x", confidence=1.0, rationale="r",
                )  # fmt: skip
                snapshot = await ledger.snapshot(conn, tenant, now, exclude_key=key)
                result = await reserve_within_limits(
                    conn, [document], run=run, proposal=proposal, key=key, payee="name:x",
                    snapshot=snapshot, autonomous=True, now=now,
                )  # fmt: skip
                if result.reserved:
                    keys.append(key)
            elif op == "execute" and keys:
                with contextlib.suppress(ledger.ReservationLapsed):  # expired: not executed
                    await ledger.mark_executed(conn, tenant, keys[arg % len(keys)], now)
            elif op == "refuse" and keys:
                await ledger.release(conn, tenant, keys[arg % len(keys)], now)
            elif op == "wait":
                now += timedelta(minutes=arg)
            # The invariant, at every step: live + executed autonomous spend in the last day.
            sums = await ledger.snapshot(conn, tenant, now)
            assert sums.windows["P1D"].autonomous <= Decimal(LIMIT["amount"])
            states = await ledger.entries(conn, tenant)
            assert all(s in ("reserved", "executed", "released") for s, _ in states.values())
    assert spend.SPEND_WINDOWS == ("P1D", "P7D", "P30D")
