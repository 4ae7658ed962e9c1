"""Group commit: concurrent appends of one tenant share transactions, and nothing is lost."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from charter.audit.chain import verify_chain
from charter.storage import Database, audit_trail
from charter.storage.group_commit import GroupCommitter

pytestmark = pytest.mark.db


async def chain(db: Database, tenant: str) -> list[audit_trail.AuditEntry]:
    async with db.tenant(tenant) as conn:
        return [e async for e in audit_trail.entries(conn, tenant)]


async def test_concurrent_appends_are_batched_into_one_chain(db: Database, tenant: str) -> None:
    committer = GroupCommitter(db)
    heads = await asyncio.gather(
        *(committer.append(tenant, "observed", {"i": i}, actor="test") for i in range(200))
    )
    entries = await chain(db, tenant)
    report = verify_chain(tenant, entries)
    assert report.ok, report
    by_seq = {e.seq: e for e in entries}
    # Every caller got the place of its own entry in the chain.
    for i, head in enumerate(heads):
        assert by_seq[head.seq].hash == head.hash and by_seq[head.seq].snapshot == {"i": i}
    # Fewer transactions than appends: commit timestamps are shared within a batch.
    async with db.tenant(tenant) as conn:
        xacts = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM charter.audit_entries WHERE tenant_id = $1 "
            "AND kind = 'observed'",
            tenant,
        )
    assert xacts < 200


async def test_bad_input_fails_only_its_caller(db: Database, tenant: str) -> None:
    committer = GroupCommitter(db)
    results = await asyncio.gather(
        committer.append(tenant, "observed", {"ok": 1}, actor="test"),
        committer.append(tenant, "observed", {"bad": float("inf")}, actor="test"),
        committer.append(tenant, "observed", {"ok": 2}, actor="test"),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    assert verify_chain(tenant, await chain(db, tenant)).ok


async def test_a_failed_batch_fails_every_caller(db: Database, tenant: str) -> None:
    """The database refusing the batch is reported to each waiter; none is acknowledged."""
    committer = GroupCommitter(db)
    before = len(await chain(db, tenant))
    results = await asyncio.gather(
        *(committer.append("no-such-tenant", "observed", {"i": i}, actor="test") for i in range(5)),
        return_exceptions=True,
    )
    # The tenant has no row in charter.tenants: the foreign key refuses every entry.
    assert all(isinstance(r, asyncpg.ForeignKeyViolationError) for r in results), results
    assert len(await chain(db, tenant)) == before
