"""`verify` in ranges: worker processes verify later ranges of the chain in the walk's
snapshot and the ranges are joined at their ends; the report is the sequential walk's."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pytest

from charter.audit.chain import Anchor
from charter.services import audit_ranges
from charter.services.audit_verification import verify_tenants
from charter.storage import Database, audit_trail
from charter.storage.audit_trail import AuditEvent
from tests.support import tamper

pytestmark = pytest.mark.db


def run_events(run: int) -> list[AuditEvent]:
    """A run's intent and, for most runs, its result: some intents stay pending."""
    key = f"wf-{run}/p1"
    events = [
        AuditEvent(kind="observed", snapshot={"run": run, "note": "é ✓"}, actor="test"),
        AuditEvent(kind="action_intent", snapshot={"idempotency_key": key}, actor="test"),
    ]
    if run % 5:
        events.append(
            AuditEvent(kind="action_result", snapshot={"idempotency_key": key}, actor="t")
        )
    return events


async def grow(db: Database, tenant: str, runs: int) -> None:
    async with db.tenant(tenant) as conn:
        await audit_trail.append_many(
            conn, tenant, [e for run in range(runs) for e in run_events(run)]
        )


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every worker's reply (None for one that found a problem or failed), with ranges
    forced on a short chain: split four ways."""
    seen: list[Any] = []
    real = audit_ranges._range_in_worker

    async def recorded(*args: Any) -> Any:
        reply = await real(*args)
        seen.append(reply)
        return reply

    monkeypatch.setattr(audit_ranges, "_range_in_worker", recorded)
    monkeypatch.setattr(audit_ranges, "PARALLEL_FROM", 2)
    monkeypatch.setattr(audit_ranges, "MAX_WORKERS", 3)
    return seen


async def sequential(db: Database, tenant: str, anchors: list[Anchor]) -> Any:
    saved = audit_ranges.PARALLEL_FROM
    audit_ranges.PARALLEL_FROM = 10**9
    try:
        (report,) = await verify_tenants(db, [tenant], {tenant: anchors})
    finally:
        audit_ranges.PARALLEL_FROM = saved
    return report


async def test_ranges_report_what_one_walk_does(
    db: Database, tenant: str, replies: list[Any]
) -> None:
    await grow(db, tenant, 40)
    whole = await sequential(db, tenant, [])
    anchors = [
        Anchor(tenant_id=tenant, seq=s, hash=h, source=f"anchor {s}")
        for s, h in await hashes(db, tenant, [whole.head_seq // 2, whole.head_seq - 1])
    ]
    (report,) = await verify_tenants(db, [tenant], {tenant: anchors})
    assert len(replies) == 3 and all(r is not None for r in replies)  # every range joined
    assert report == await sequential(db, tenant, anchors)
    assert report.ok and report.anchors_checked == 2
    assert report.pending_actions == [f"wf-{run}/p1" for run in range(0, 40, 5)]


async def test_a_forgery_in_a_workers_range_is_named_as_one_walk_names_it(
    db: Database, admin: asyncpg.Connection, tenant: str, replies: list[Any]
) -> None:
    await grow(db, tenant, 40)
    async with db.tenant(tenant) as conn:
        forged = await conn.fetchval(
            "SELECT max(seq) FROM charter.audit_entries WHERE tenant_id = $1 AND kind = $2",
            tenant,
            "observed",
        )
    await tamper.flip_byte(admin, tenant, forged)
    (report,) = await verify_tenants(db, [tenant])
    assert None in replies  # the last worker found it; the chain was walked again
    assert report == await sequential(db, tenant, [])
    assert not report.ok and report.first_bad_seq == forged
    assert "content does not match its hash" in (report.problem or "")


async def test_a_worker_that_cannot_connect_leaves_the_walk_to_this_process(
    db: Database, tenant: str, replies: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await grow(db, tenant, 20)
    monkeypatch.setattr(db, "dsn", "postgresql://nobody@127.0.0.1:1/none")
    (report,) = await verify_tenants(db, [tenant])
    assert replies and all(r is None for r in replies)
    assert report.ok and report == await sequential(db, tenant, [])


@pytest.mark.parametrize(("head", "workers"), [(2, 1), (7, 3), (100, 1), (100_001, 3)])
def test_ranges_cover_the_chain_once_in_order(head: int, workers: int) -> None:
    ranges = audit_ranges._ranges(head, workers)
    assert len(ranges) == workers + 1 and ranges[0][0] == 1 and ranges[-1][1] == head
    assert all(lo <= hi for lo, hi in ranges)
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))


async def hashes(db: Database, tenant: str, seqs: list[int]) -> list[tuple[int, str]]:
    async with db.tenant(tenant) as conn:
        rows = await conn.fetch(
            "SELECT seq, hash FROM charter.audit_entries WHERE tenant_id = $1 "
            "AND seq = ANY($2::bigint[]) ORDER BY seq",
            tenant,
            seqs,
        )
    return [(r["seq"], r["hash"]) for r in rows]
