"""Corruption probes as superuser, each detected by `verify` and named by its seq."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.audit.chain import Anchor, ChainReport, verify_chain
from charter.audit.checkpoints import sign, verified_anchor
from charter.services import audit_ranges
from charter.services.audit_verification import verify_tenants
from charter.storage import Database, audit_trail
from tests.support import tamper

pytestmark = pytest.mark.db

KEY = Ed25519PrivateKey.generate()


@pytest.fixture(autouse=True, params=["sequential", "in-ranges"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every probe against both walks: one pass, and ranges in worker processes (a short
    chain split four ways, so probes land in this process's range and in workers')."""
    if request.param == "in-ranges":
        monkeypatch.setattr(audit_ranges, "PARALLEL_FROM", 2)
        monkeypatch.setattr(audit_ranges, "MAX_WORKERS", 3)


async def grow(db: Database, tenant: str, n: int = 8) -> None:
    for i in range(n):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(
                conn, tenant, "observed", {"i": i, "note": "é ✓"}, actor="test"
            )


async def checkpoint(db: Database, tenant: str) -> Anchor:
    """Sign the verified head, as `charter audit checkpoint` does, and check it back."""
    (report,) = await verify_tenants(db, [tenant])
    assert report.ok
    return verified_anchor(KEY.public_key(), sign(KEY, tenant, report.head_seq, report.head_hash))


async def verify(db: Database, tenant: str, anchors: list[Anchor] | None = None) -> ChainReport:
    (report,) = await verify_tenants(db, [tenant], {tenant: anchors or []})
    return report


Probe = Callable[[asyncpg.Connection, str, int], Awaitable[None]]


@pytest.mark.parametrize(
    ("probe", "first_bad", "problem"),
    [
        (tamper.flip_byte, 5, "content does not match its hash"),
        (tamper.delete_entry, 5, "entry 5 is missing"),
        (tamper.swap_entries, 5, "prev_hash does not match"),
        (tamper.insert_forged, 6, "prev_hash does not match"),
    ],
    ids=["flip-byte", "delete-middle", "swap", "insert-forged"],
)
async def test_chain_alone_detects(
    db: Database,
    admin: asyncpg.Connection,
    tenant: str,
    probe: Probe,
    first_bad: int,
    problem: str,
) -> None:
    await grow(db, tenant)
    assert (await verify(db, tenant)).ok
    await probe(admin, tenant, 5)
    report = await verify(db, tenant)
    assert not report.ok
    assert report.first_bad_seq == first_bad, report
    assert problem in (report.problem or "")


async def test_rewrite_and_recompute_needs_an_anchor(
    db: Database, admin: asyncpg.Connection, tenant: str
) -> None:
    await grow(db, tenant, 3)
    early = await checkpoint(db, tenant)
    await grow(db, tenant, 5)
    late = await checkpoint(db, tenant)
    await tamper.rewrite_and_recompute(admin, tenant, early.seq + 2)
    # The table alone is consistent again: this is what anchoring outside PostgreSQL is for.
    assert (await verify(db, tenant)).ok
    report = await verify(db, tenant, [early, late])
    assert not report.ok
    assert report.first_bad_seq == late.seq
    assert f"at or before seq {late.seq} (after seq {early.seq})" in (report.problem or "")


async def test_truncated_tail_is_caught_by_a_checkpoint(
    db: Database, admin: asyncpg.Connection, tenant: str
) -> None:
    await grow(db, tenant)
    anchor = await checkpoint(db, tenant)
    await tamper.truncate_tail(admin, tenant, anchor.seq - 3)
    assert (await verify(db, tenant)).ok
    report = await verify(db, tenant, [anchor])
    assert not report.ok and report.first_bad_seq == anchor.seq
    assert "entries removed from the tail" in (report.problem or "")


async def test_verifier_needs_no_database(db: Database, tenant: str) -> None:
    """An export verifies on its own: same report as from the database."""
    await grow(db, tenant)
    async with db.tenant(tenant) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant)]
    exported = [type(e).model_validate_json(e.model_dump_json()) for e in entries]
    assert verify_chain(tenant, exported) == await verify(db, tenant)
