"""Corruption probes: what an attacker with superuser rights could do to the audit table.

Each runs with triggers disabled (`session_replication_role = replica`), the way a
superuser would go around them.
"""

from __future__ import annotations

import json

import asyncpg

from charter.audit.chain import AuditEntry, entry_hash
from charter.storage import audit_trail


async def chain(admin: asyncpg.Connection, tenant: str) -> list[AuditEntry]:
    return [e async for e in audit_trail.entries(admin, tenant)]


async def _untriggered(admin: asyncpg.Connection, sql: str, *args: object) -> None:
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(sql, *args)


async def flip_byte(admin: asyncpg.Connection, tenant: str, seq: int) -> None:
    """Change one character of one entry's snapshot."""
    entry = next(e for e in await chain(admin, tenant) if e.seq == seq)
    text = json.dumps(entry.snapshot)
    # A digit of the first number, or the first character inside the first string.
    i = next(
        at + 2 + (text[at + 2] == '"')
        for at in range(len(text))
        if text.startswith(": ", at)
        and (text[at + 2].isdigit() or (text[at + 2] == '"' and text[at + 3] not in '"\\'))
    )
    flipped = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :]
    await _untriggered(
        admin,
        "UPDATE charter.audit_entries SET snapshot = $3::jsonb WHERE tenant_id = $1 AND seq = $2",
        tenant,
        seq,
        flipped,
    )


async def set_snapshot(admin: asyncpg.Connection, tenant: str, seq: int, snapshot: str) -> None:
    """Replace one entry's snapshot with `snapshot` (JSON text, any JSON value)."""
    await _untriggered(
        admin,
        "UPDATE charter.audit_entries SET snapshot = $3::jsonb WHERE tenant_id = $1 AND seq = $2",
        tenant,
        seq,
        snapshot,
    )


async def delete_entry(admin: asyncpg.Connection, tenant: str, seq: int) -> None:
    await _untriggered(
        admin, "DELETE FROM charter.audit_entries WHERE tenant_id = $1 AND seq = $2", tenant, seq
    )


async def swap_entries(admin: asyncpg.Connection, tenant: str, seq: int) -> None:
    """Swap the positions of entries seq and seq + 1."""
    move = "UPDATE charter.audit_entries SET seq = $3 WHERE tenant_id = $1 AND seq = $2"
    await _untriggered(admin, move, tenant, seq, 1_000_000)
    await _untriggered(admin, move, tenant, seq + 1, seq)
    await _untriggered(admin, move, tenant, 1_000_000, seq + 1)


def _forge(tenant: str, seq: int, prev_hash: str) -> AuditEntry:
    fields = {
        "tenant_id": tenant,
        "seq": seq,
        "kind": "decision",
        "occurred_at": "2026-01-01T00:00:00.000000+00:00",
        "workflow_id": "charter/forged",
        "run_id": "forged",
        "actor": "member:mallory",
        "snapshot": {"decision": {"outcome": "approve", "approver": "mallory"}},
        "prev_hash": prev_hash,
    }
    return AuditEntry(**fields, hash=entry_hash(**fields))  # type: ignore[arg-type]


async def _insert(admin: asyncpg.Connection, e: AuditEntry) -> None:
    await _untriggered(
        admin,
        "INSERT INTO charter.audit_entries (tenant_id, seq, kind, occurred_at, workflow_id, "
        "run_id, actor, snapshot, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10)",
        e.tenant_id,
        e.seq,
        e.kind,
        e.occurred_at,
        e.workflow_id,
        e.run_id,
        e.actor,
        json.dumps(e.snapshot),
        e.prev_hash,
        e.hash,
    )


async def insert_forged(admin: asyncpg.Connection, tenant: str, seq: int) -> None:
    """Make room at seq and insert a well-formed entry linked to its predecessor."""
    entries = await chain(admin, tenant)
    await _untriggered(
        admin,
        "UPDATE charter.audit_entries SET seq = seq + 1000000 WHERE tenant_id = $1 AND seq >= $2",
        tenant,
        seq,
    )
    await _untriggered(
        admin,
        "UPDATE charter.audit_entries SET seq = seq - 999999 WHERE tenant_id = $1 AND seq >= $2",
        tenant,
        seq,
    )
    await _insert(admin, _forge(tenant, seq, entries[seq - 2].hash))


async def rewrite_and_recompute(admin: asyncpg.Connection, tenant: str, seq: int) -> None:
    """The strongest attack on the table alone: alter one entry, then re-link every later one
    (and the head) so that the chain verifies again."""
    entries = await chain(admin, tenant)
    prev = entries[seq - 2].hash if seq > 1 else "0" * 64
    for e in entries[seq - 1 :]:
        snapshot = {**e.snapshot, "rewritten": True} if e.seq == seq else e.snapshot
        fields = {**e.model_dump(exclude={"hash"}), "snapshot": snapshot, "prev_hash": prev}
        new = AuditEntry(**fields, hash=entry_hash(**fields))
        await _untriggered(
            admin,
            "UPDATE charter.audit_entries SET snapshot = $3::jsonb, prev_hash = $4, hash = $5 "
            "WHERE tenant_id = $1 AND seq = $2",
            tenant,
            e.seq,
            json.dumps(new.snapshot),
            new.prev_hash,
            new.hash,
        )
        prev = new.hash
    await _untriggered(
        admin, "UPDATE charter.audit_heads SET hash = $2 WHERE tenant_id = $1", tenant, prev
    )


async def truncate_tail(admin: asyncpg.Connection, tenant: str, keep: int) -> None:
    entries = await chain(admin, tenant)
    await _untriggered(
        admin, "DELETE FROM charter.audit_entries WHERE tenant_id = $1 AND seq > $2", tenant, keep
    )
    await _untriggered(
        admin,
        "UPDATE charter.audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1",
        tenant,
        keep,
        entries[keep - 1].hash,
    )
