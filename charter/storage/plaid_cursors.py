"""Where each Plaid Item's /transactions/sync stands for a tenant (`plaid_cursors`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg


@dataclass(frozen=True)
class SyncState:
    """The cursor of the last completed sync ("" before the first) and the transactions,
    by transaction_id, as Plaid's changes up to it leave them (plain JSON values)."""

    cursor: str = ""
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)


async def load(conn: asyncpg.Connection, tenant_id: str, item_id: str) -> SyncState:
    row = await conn.fetchrow(
        "SELECT cursor, transactions FROM charter.plaid_cursors "
        "WHERE tenant_id = $1 AND item_id = $2",
        tenant_id,
        item_id,
    )
    if row is None:
        return SyncState()
    return SyncState(row["cursor"], json.loads(row["transactions"]))


async def save(
    conn: asyncpg.Connection, tenant_id: str, item_id: str, since: str, reached: SyncState
) -> bool:
    """Store `reached` if the stored cursor is still `since` (or none is stored and `since`
    is ""); False when another read moved it meanwhile (its state is kept: as good)."""
    stored = await conn.fetchval(
        "INSERT INTO charter.plaid_cursors (tenant_id, item_id, cursor, transactions) "
        "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (tenant_id, item_id) DO UPDATE "
        "SET cursor = EXCLUDED.cursor, transactions = EXCLUDED.transactions, updated_at = now() "
        "WHERE charter.plaid_cursors.cursor = $5 RETURNING 1",
        tenant_id,
        item_id,
        reached.cursor,
        json.dumps(reached.transactions),
        since,
    )
    return stored is not None
