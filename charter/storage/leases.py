"""Write leases: which attempt is writing a record at a provider, until when.

A lease stands in for a row lock that would otherwise be held open across the provider
call. It is claimed in the transaction of the write intent, renewed while the call is in
flight (each renewal a short transaction of its own), and finished in the transaction that
records the result. Clocks are the database's, so workers with skewed clocks agree on
whether a lease is live.

The idempotency key is stored as given: an opaque string, whatever derives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

LeaseState = Literal["claimed", "done", "released"]


@dataclass(frozen=True)
class Lease:
    subject: str
    idempotency_key: str
    holder: str
    state: LeaseState
    expires_at: datetime
    live: bool
    taken_over_from: str | None = None


def subject_of(action: str, reference: str | None, idempotency_key: str) -> str:
    """The record a write touches: the bill it pays, say, or the action itself."""
    return f"{action}/{reference or idempotency_key}"


_COLUMNS = (
    "subject, idempotency_key, holder, state, expires_at, taken_over_from, "
    "(state = 'claimed' AND expires_at > clock_timestamp()) AS live"
)


def _lease(row: asyncpg.Record | None) -> Lease | None:
    return None if row is None else Lease(**dict(row))


async def claim(
    conn: asyncpg.Connection,
    tenant_id: str,
    subject: str,
    idempotency_key: str,
    holder: str,
    ttl: timedelta,
) -> Lease | None:
    """Claim the subject for `holder` until `ttl` from now; None while another holder's
    lease is live. A lease finished, released or expired is taken over (the previous holder
    is kept in `taken_over_from`)."""
    row = await conn.fetchrow(
        "INSERT INTO charter.write_leases AS l (tenant_id, subject, idempotency_key, holder, "
        "state, claimed_at, expires_at) VALUES ($1, $2, $3, $4, 'claimed', clock_timestamp(), "
        "clock_timestamp() + $5::interval) ON CONFLICT (tenant_id, subject) DO UPDATE SET "
        "idempotency_key = EXCLUDED.idempotency_key, holder = EXCLUDED.holder, state = "
        "'claimed', claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at, "
        "taken_over_from = CASE WHEN l.holder = EXCLUDED.holder THEN l.taken_over_from "
        "ELSE l.holder END WHERE l.state <> 'claimed' OR l.expires_at <= clock_timestamp() "
        f"OR l.holder = EXCLUDED.holder RETURNING {_COLUMNS}",
        tenant_id,
        subject,
        idempotency_key,
        holder,
        ttl,
    )
    return _lease(row)


async def renew(
    conn: asyncpg.Connection, tenant_id: str, subject: str, holder: str, ttl: timedelta
) -> datetime | None:
    """Push the holder's live lease out to `ttl` from now; None when it is no longer theirs
    (taken over after it expired, finished or released)."""
    renewed: datetime | None = await conn.fetchval(
        "UPDATE charter.write_leases SET expires_at = clock_timestamp() + $4::interval "
        "WHERE tenant_id = $1 AND subject = $2 AND holder = $3 AND state = 'claimed' "
        "RETURNING expires_at",
        tenant_id,
        subject,
        holder,
        ttl,
    )
    return renewed


async def current(conn: asyncpg.Connection, tenant_id: str, subject: str) -> Lease | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM charter.write_leases WHERE tenant_id = $1 AND subject = $2",
        tenant_id,
        subject,
    )
    return _lease(row)


async def locked(conn: asyncpg.Connection, tenant_id: str, subject: str) -> Lease | None:
    """The subject's lease, its row locked until the caller's transaction ends: the result
    is recorded against a lease nobody changes meanwhile."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM charter.write_leases WHERE tenant_id = $1 AND subject = $2 "
        "FOR UPDATE",
        tenant_id,
        subject,
    )
    return _lease(row)


async def end(
    conn: asyncpg.Connection, tenant_id: str, subject: str, holder: str, state: LeaseState
) -> bool:
    """Finish (`done`) or give up (`released`) the holder's lease; False if it was not
    theirs any more."""
    ended = await conn.fetchval(
        "UPDATE charter.write_leases SET state = $4 WHERE tenant_id = $1 AND subject = $2 "
        "AND holder = $3 AND state = 'claimed' RETURNING 1",
        tenant_id,
        subject,
        holder,
        state,
    )
    return ended is not None


async def settle(
    conn: asyncpg.Connection, tenant_id: str, subject: str, idempotency_key: str
) -> None:
    """The write under `idempotency_key` is recorded: its lease is done, whoever holds it."""
    await conn.execute(
        "UPDATE charter.write_leases SET state = 'done' WHERE tenant_id = $1 AND subject = $2 "
        "AND idempotency_key = $3 AND state = 'claimed'",
        tenant_id,
        subject,
        idempotency_key,
    )
