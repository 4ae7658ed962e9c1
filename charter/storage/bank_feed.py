"""Where each linked bank Item's transaction sync stands, and the lines it delivered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

_LINE = "transaction_id, account_id, amount, currency, description, booked_on, pending"


async def cursor(conn: asyncpg.Connection, tenant_id: str, item_id: str) -> str:
    """The cursor to continue from ('' before the first sync)."""
    value = await conn.fetchval(
        "SELECT cursor FROM charter.bank_sync_cursors WHERE tenant_id = $1 AND item_id = $2",
        tenant_id,
        item_id,
    )
    return str(value or "")


async def apply(
    conn: asyncpg.Connection,
    tenant_id: str,
    item_id: str,
    *,
    since: str,
    until: str,
    upserted: Iterable[Mapping[str, Any]],
    removed: Iterable[str],
) -> bool:
    """Record one sync from cursor `since` to `until`: lines added or modified, and those
    removed, by transaction id. False (nothing written) when another read moved the cursor
    on from `since` meanwhile: its lines are the ones to keep."""
    moved = await conn.fetchval(
        "INSERT INTO charter.bank_sync_cursors (tenant_id, item_id, cursor) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id, item_id) DO UPDATE SET cursor = EXCLUDED.cursor, "
        "synced_at = now() WHERE charter.bank_sync_cursors.cursor = $4 RETURNING 1",
        tenant_id,
        item_id,
        until,
        since,
    )
    if moved is None:
        return False
    await conn.executemany(
        f"INSERT INTO charter.bank_transactions (tenant_id, item_id, {_LINE}) VALUES "
        "($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, item_id, transaction_id) "
        "DO UPDATE SET account_id = EXCLUDED.account_id, amount = EXCLUDED.amount, "
        "currency = EXCLUDED.currency, description = EXCLUDED.description, "
        "booked_on = EXCLUDED.booked_on, pending = EXCLUDED.pending",
        [
            (
                tenant_id,
                item_id,
                t["transaction_id"],
                t["account_id"],
                t["amount"],
                t["currency"],
                t["description"],
                t["booked_on"],
                t["pending"],
            )
            for t in upserted
        ],
    )
    await conn.execute(
        "DELETE FROM charter.bank_transactions WHERE tenant_id = $1 AND item_id = $2 AND "
        "transaction_id = ANY($3::text[])",
        tenant_id,
        item_id,
        list(removed),
    )
    return True


async def lines(conn: asyncpg.Connection, tenant_id: str, item_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_LINE} FROM charter.bank_transactions WHERE tenant_id = $1 AND item_id = $2 "
        "ORDER BY booked_on, transaction_id",
        tenant_id,
        item_id,
    )
    return [dict(r) for r in rows]
