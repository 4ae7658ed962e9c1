"""Appending to and reading the audit trail inside a tenant transaction.

An append locks the tenant's head row, so appends for one tenant are serialised while
other tenants proceed in parallel. It runs in the caller's transaction: if the caller's
work rolls back, so does its audit entry, and if the audit write fails, so does the work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from charter.audit import GENESIS, AuditEntry, entry_hash
from schemas import AuditHead


async def append(
    conn: asyncpg.Connection,
    tenant_id: str,
    kind: str,
    snapshot: dict[str, Any],
    *,
    actor: str,
    workflow_id: str | None = None,
    run_id: str | None = None,
) -> AuditHead:
    await conn.execute(
        "INSERT INTO charter.audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id,
        GENESIS,
    )
    head = await conn.fetchrow(
        "SELECT seq, hash FROM charter.audit_heads WHERE tenant_id = $1 FOR UPDATE", tenant_id
    )
    if head is None:
        raise RuntimeError(f"audit append for tenant {tenant_id!r}: head row not visible")
    seq = head["seq"] + 1
    occurred_at = datetime.now(UTC).isoformat(timespec="microseconds")
    # Round-trip through JSON so the hashed value is exactly what the database returns.
    snapshot = json.loads(json.dumps(snapshot))
    digest = entry_hash(
        tenant_id=tenant_id,
        seq=seq,
        kind=kind,
        occurred_at=occurred_at,
        workflow_id=workflow_id,
        run_id=run_id,
        actor=actor,
        snapshot=snapshot,
        prev_hash=head["hash"],
    )
    await conn.execute(
        "INSERT INTO charter.audit_entries (tenant_id, seq, kind, occurred_at, workflow_id, "
        "run_id, actor, snapshot, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10)",
        tenant_id,
        seq,
        kind,
        occurred_at,
        workflow_id,
        run_id,
        actor,
        json.dumps(snapshot),
        head["hash"],
        digest,
    )
    await conn.execute(
        "UPDATE charter.audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1",
        tenant_id,
        seq,
        digest,
    )
    return AuditHead(seq=seq, hash=digest)


async def head(conn: asyncpg.Connection, tenant_id: str) -> AuditHead:
    row = await conn.fetchrow(
        "SELECT seq, hash FROM charter.audit_heads WHERE tenant_id = $1", tenant_id
    )
    return AuditHead(seq=row["seq"], hash=row["hash"]) if row else AuditHead(seq=0, hash=GENESIS)


async def entries(
    conn: asyncpg.Connection, tenant_id: str, *, batch: int = 1000
) -> AsyncIterator[AuditEntry]:
    """Every entry of a tenant in chain order, streamed in batches."""
    last = 0
    while True:
        rows = await conn.fetch(
            "SELECT tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, "
            "snapshot::text AS snapshot, prev_hash, hash FROM charter.audit_entries "
            "WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            tenant_id,
            last,
            batch,
        )
        if not rows:
            return
        for r in rows:
            yield AuditEntry(**{**dict(r), "snapshot": json.loads(r["snapshot"])})
        last = rows[-1]["seq"]
