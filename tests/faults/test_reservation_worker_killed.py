"""A worker process killed (SIGKILL) in the middle of a reservation.

Killed inside the reservation's transaction, the database rolls it back when the
connection dies: nothing is reserved, and the next act fits in the room. Killed after the
reservation committed, it counts against the cap until its retry completes it (or it
lapses): a concurrent act that would carry spend past the cap goes to a human. Either way
the cap holds, nothing executes twice, no reservation is left, and the audit trail and the
ledger rebuilt from it verify.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from activities import ActActivities, Deps
from charter.config.settings import app_dsn
from charter.reasoners import OfflineReasoner
from charter.services.audit_verification import verify_tenants
from charter.services.execution import RESERVATION_TTL
from charter.storage import Database, ledger
from tests.support.paths import REPO
from tests.support.spend_limits import (
    DAILY_CAP,
    add_vendor_invoices,
    executed_total,
    gated,
    outcome,
    with_limits,
)
from tests.support.vault import session_vault

ROOT = REPO


async def killed_at(point: str, dsn: str, raw: str) -> int:
    """Run one act in a child worker process and SIGKILL it at `point`; its exit code."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.faults.act_child",
        dsn,
        point,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(raw.encode())
    child.stdin.close()
    try:
        async with asyncio.timeout(60):
            said = await child.stdout.readline()
        assert said.decode().strip() == f"stopped {point}", said
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
    return await child.wait()


@pytest.mark.parametrize("point", ["reserved", "committed"])
async def test_a_worker_killed_mid_reservation_never_carries_spend_past_the_cap(
    db: Database, admin_dsn: str, tenant: str, point: str
) -> None:
    law = await with_limits(db, tenant, DAILY_CAP)  # $5,000 a day autonomously
    invoices = await add_vendor_invoices(db, tenant, 6, Decimal("900.00"))
    requests = [await gated(db, tenant, law, n, i) for n, i in enumerate(invoices)]
    act = ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))
    for req in requests[:4]:  # $3,600 spent: room for one more $900, not two
        assert await outcome(act, req) == "executed"
    killed, contender = requests[4], requests[5]

    code = await killed_at(point, app_dsn(admin_dsn), killed.model_dump_json())
    assert code == -signal.SIGKILL

    async with db.tenant(tenant) as conn:
        states = await ledger.entries(conn, tenant)
    # The killed act's reservation, if it survived the kill.
    reserved = [k for k, (state, _) in states.items() if state == "reserved"]
    if point == "reserved":
        assert reserved == []  # rolled back with the dead connection
        assert await outcome(act, contender) == "executed"
        assert await outcome(act, killed) == "BackToHumans"  # the retry finds no room
    else:
        assert len(reserved) == 1
        # It counts until it executes or lapses: the contender does not fit meanwhile.
        assert await outcome(act, contender) == "BackToHumans"
        async with db.tenant(tenant) as conn:
            now = datetime.now(UTC)
            live = await ledger.snapshot(conn, tenant, now)
            lapsed = await ledger.snapshot(
                conn, tenant, now + RESERVATION_TTL + timedelta(minutes=1)
            )
        assert live.windows["P1D"].autonomous == Decimal("4500.00")
        assert lapsed.windows["P1D"].autonomous == Decimal("3600.00")
        assert await outcome(act, killed) == "executed"  # the retry completes it

    assert await executed_total(db, tenant) == Decimal("4500.00") <= Decimal(DAILY_CAP["amount"])
    async with db.tenant(tenant) as conn:
        states = await ledger.entries(conn, tenant)
    assert not [k for k, (state, _) in states.items() if state == "reserved"]
    assert (
        sorted(a for state, a in states.values() if state == "executed") == [Decimal("900.00")] * 5
    )
    (report,) = await verify_tenants(db, [tenant])
    assert report.ok, report.problem
