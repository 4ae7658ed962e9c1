"""Setting a tenant's exchange rates: an owner's act, audited, as the owner database role.

The limits convert money in other currencies with these rates, so a rate moves what fits
under a limit: like the law and the roster, it is written only as the owner role, by an
active owner, with its audit entry in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from charter.storage import audit_trail, exchange_rates, roster
from charter.storage.member_keys import owner_tenant
from schemas import ExchangeRate


class RateRefused(Exception):
    """A rate that cannot be set; the message says why, and nothing changed."""


async def set_rate(
    admin_dsn: str, tenant_id: str, rate: ExchangeRate, *, by: str, now: datetime
) -> None:
    if rate.as_of > now:
        raise RateRefused(f"a rate quoted at {rate.as_of.isoformat()} is in the future")
    async with owner_tenant(admin_dsn, tenant_id) as conn:
        if not await roster.is_owner(conn, tenant_id, by):
            raise RateRefused(
                f"{by!r} is not an active owner of tenant {tenant_id!r}; only an owner sets "
                "exchange rates"
            )
        await record(conn, tenant_id, rate, actor=f"member:{by}")


async def record(
    owner: asyncpg.Connection, tenant_id: str, rate: ExchangeRate, *, actor: str
) -> None:
    """Set `rate` and audit it, in the caller's owner-role transaction."""
    await exchange_rates.put(owner, tenant_id, rate)
    await audit_trail.append(
        owner, tenant_id, "exchange_rate_set", rate.model_dump(mode="json"), actor=actor
    )


async def listing(admin_dsn: str, tenant_id: str) -> list[ExchangeRate]:
    async with owner_tenant(admin_dsn, tenant_id) as conn:
        return await exchange_rates.current(conn, tenant_id)
