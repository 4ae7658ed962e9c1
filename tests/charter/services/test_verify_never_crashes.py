"""The verifier reports a malformed entry with its tenant and seq and goes on with every
other tenant; an intent closed by a refusal or a reconciliation is not pending."""

from __future__ import annotations

import contextlib

import asyncpg
import pytest

from charter.audit.chain import GENESIS, AuditEntry, entry_hash, verify_chain
from charter.services.audit_verification import verify_tenants
from charter.storage import Database, audit_trail
from charter_cli.audit import verify_export
from tests.support import tamper
from tests.support.tenants import TenantPair

pytestmark = pytest.mark.db


@pytest.mark.parametrize("snapshot", ["[1, 2]", '"text"', "null", "42"])
async def test_a_snapshot_that_is_not_an_object_is_reported_not_raised(
    db: Database, admin: asyncpg.Connection, pair: TenantPair, snapshot: str
) -> None:
    broken, fine = pair.a, pair.b
    # The pair's fixture rows include a spend-ledger reservation no audit entry backs; the
    # verifier rightly reports that too, so it goes: this test is about unreadable entries.
    await tamper._untriggered(
        admin, "DELETE FROM charter.spend_ledger WHERE tenant_id = ANY($1::text[])", [broken, fine]
    )
    for tenant in (broken, fine):
        for i in range(3):
            async with db.tenant(tenant) as conn:
                await audit_trail.append(conn, tenant, "observed", {"i": i}, actor="test")
    await tamper._untriggered(
        admin,
        "UPDATE charter.audit_entries SET snapshot = $2::jsonb WHERE tenant_id = $1 AND seq = 2",
        broken,
        snapshot,
    )
    reports = {r.tenant_id: r for r in await verify_tenants(db, [broken, fine])}
    assert not reports[broken].ok and reports[broken].first_bad_seq == 2
    assert "cannot be read" in (reports[broken].problem or "")
    assert "snapshot" in (reports[broken].problem or "")
    assert reports[fine].ok and reports[fine].entries >= 3


def test_an_export_line_that_is_not_an_entry_is_attributed_to_its_tenant() -> None:
    lines = [e.model_dump_json() for e in _chain(("observed", {}), tenant="t-a")]
    lines.append('{"tenant_id": "t-b", "seq": 1, "snapshot": [1]}')
    reports = {r.tenant_id: r for r in verify_export(lines, None, {})}
    assert reports["t-a"].ok
    assert not reports["t-b"].ok and reports["t-b"].first_bad_seq == 1


def _chain(*specs: tuple[str, dict[str, object]], tenant: str = "t") -> list[AuditEntry]:
    out: list[AuditEntry] = []
    prev = GENESIS
    for seq, (kind, snapshot) in enumerate(specs, 1):
        fields = {
            "tenant_id": tenant,
            "seq": seq,
            "kind": kind,
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "workflow_id": None,
            "run_id": None,
            "actor": "test",
            "snapshot": snapshot,
            "prev_hash": prev,
        }
        prev = entry_hash(**fields)  # type: ignore[arg-type]
        out.append(AuditEntry(**fields, hash=prev))  # type: ignore[arg-type]
    return out


def test_an_intent_is_pending_only_until_something_closes_it() -> None:
    entries = _chain(
        ("action_intent", {"idempotency_key": "k-result"}),
        ("action_intent", {"idempotency_key": "k-refused"}),
        ("action_intent", {"idempotency_key": "k-reconciled"}),
        ("action_intent", {"idempotency_key": "k-open"}),
        ("action_result", {"idempotency_key": "k-result"}),
        ("action_refused", {"idempotency_key": "k-refused"}),
        ("action_reconciled", {"idempotency_key": "k-reconciled"}),
    )
    report = verify_chain("t", entries)
    assert report.ok and report.pending_actions == ["k-open"]


def test_a_non_finite_number_is_reported_not_raised() -> None:
    [entry] = _chain(("observed", {"amount": 1}))
    odd = entry.model_copy(update={"snapshot": {"amount": float("inf")}})
    report = verify_chain("t", [odd])
    assert not report.ok and report.first_bad_seq == 1
    assert "cannot be encoded" in (report.problem or "")


async def test_a_reader_that_stops_early_leaves_the_connection_usable(
    db: Database, pair: TenantPair
) -> None:
    """The verifier stops at the first bad entry while the next batch's query is already
    on its way: closing the reader waits for it, so the transaction goes on."""
    tenant = pair.a
    for i in range(5):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(conn, tenant, "observed", {"i": i}, actor="test")
    async with db.tenant(tenant) as conn:
        async with contextlib.aclosing(
            audit_trail.readable_entries(conn, tenant, batch=2)
        ) as entries:
            async for entry in entries:
                assert entry.seq == 1
                break
        assert (await audit_trail.head(conn, tenant)).seq >= 5
        seqs = [e.seq async for e in audit_trail.readable_entries(conn, tenant, batch=2)]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 5
