"""A tenant's exchange rates: read by the application, written only as the owner role."""

from __future__ import annotations

import asyncpg

from schemas import ExchangeRate

_COLUMNS = "currency, base, rate, source, as_of"


async def current(conn: asyncpg.Connection, tenant_id: str) -> list[ExchangeRate]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM charter.exchange_rates WHERE tenant_id = $1 "
        "ORDER BY currency, base",
        tenant_id,
    )
    return [ExchangeRate(**dict(r)) for r in rows]


async def put(conn: asyncpg.Connection, tenant_id: str, rate: ExchangeRate) -> None:
    """Set (or replace) the rate of `rate.currency` in `rate.base`; the owner role only."""
    await conn.execute(
        "INSERT INTO charter.exchange_rates (tenant_id, currency, base, rate, source, as_of) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, currency, base) DO UPDATE "
        "SET rate = EXCLUDED.rate, source = EXCLUDED.source, as_of = EXCLUDED.as_of, "
        "recorded_at = now()",
        tenant_id,
        rate.currency,
        rate.base,
        rate.rate,
        rate.source,
        rate.as_of,
    )
