"""The spend ledger: what Charter has committed, per action, for limits and `spend.*` facts.

Every reservation happens under a per-tenant transaction lock, so two runs (or two workers,
or a retry) that check the same limit at the same moment are serialised: the second sees
the first's reservation. Transitions are guarded by the current state, so a reservation is
released at most once and an executed one is never released.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from charter.governance.spend import WINDOWS, totals
from schemas import SpendSnapshot


async def lock(conn: asyncpg.Connection, tenant_id: str) -> datetime:
    """Serialise every reservation of a tenant until the transaction ends; return the
    database's clock once the lock is held. Reservations are stamped with it, so they are
    ordered as they were serialised, whatever the clocks of the workers say."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('charter.spend/' || $1, 0))", tenant_id
    )
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def snapshot(
    conn: asyncpg.Connection,
    tenant_id: str,
    now: datetime,
    *,
    currency: str = "USD",
    exclude_key: str | None = None,
) -> SpendSnapshot:
    """Executed amounts and live reservations per window as of `now`: in `currency`, and
    in every other currency apart (the limits convert them).

    `exclude_key`: an action's own earlier reservation (a retried attempt), not counted twice.
    """
    longest = max(WINDOWS.values())
    rows = await conn.fetch(
        "SELECT reserved_at AS at, amount, currency, action, payee, agent, autonomous FROM "
        "charter.spend_ledger WHERE tenant_id = $1 AND (state = 'executed' "
        "OR (state = 'reserved' AND expires_at > $2)) AND reserved_at > $3 AND "
        "idempotency_key IS DISTINCT FROM $4",
        tenant_id,
        now,
        now - longest,
        exclude_key,
    )
    by_currency: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_currency.setdefault(r["currency"], []).append(dict(r))
    return SpendSnapshot(
        as_of=now,
        currency=currency,
        windows=totals(by_currency.pop(currency, []), now),
        other_currencies={c: totals(found, now) for c, found in sorted(by_currency.items())},
    )


async def reserve(
    conn: asyncpg.Connection,
    tenant_id: str,
    key: str,
    *,
    workflow_id: str,
    proposal_id: str,
    agent: str,
    action: str,
    payee: str,
    amount: Decimal,
    currency: str,
    autonomous: bool,
    now: datetime,
    ttl: timedelta,
) -> None:
    """Reserve (or renew, on a retried attempt) the amount of one action. Never touches an
    executed row."""
    await conn.execute(
        "INSERT INTO charter.spend_ledger (tenant_id, idempotency_key, workflow_id, proposal_id, "
        "agent, action, payee, amount, currency, autonomous, state, reserved_at, expires_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'reserved',$11,$12) "
        "ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET state = 'reserved', "
        "amount = EXCLUDED.amount, autonomous = EXCLUDED.autonomous, reserved_at = "
        "EXCLUDED.reserved_at, expires_at = EXCLUDED.expires_at, released_at = NULL "
        "WHERE charter.spend_ledger.state <> 'executed'",
        tenant_id,
        key,
        workflow_id,
        proposal_id,
        agent,
        action,
        payee,
        amount,
        currency,
        autonomous,
        now,
        now + ttl,
    )


class ReservationLapsed(Exception):
    """The action's reservation expired (or was released) before it executed: the limit
    may have been given to someone else since, so it must not execute on it."""


async def mark_executed(
    conn: asyncpg.Connection, tenant_id: str, key: str, now: datetime | None = None
) -> None:
    """Turn the action's live reservation into executed spend, in the transaction of the
    write. No reservation at all (an action that spends nothing) is fine; a lapsed one
    raises, and the caller's transaction, write included, rolls back. `now`: the database's
    clock unless given (tests that move time)."""
    state = await conn.fetchval(
        "SELECT state FROM charter.spend_ledger WHERE tenant_id = $1 AND idempotency_key = $2 "
        "FOR UPDATE",
        tenant_id,
        key,
    )
    if state is None:
        return
    done = await conn.fetchval(
        "UPDATE charter.spend_ledger SET state = 'executed', executed_at = "
        "COALESCE($3, clock_timestamp()) WHERE tenant_id = $1 AND idempotency_key = $2 AND "
        "state = 'reserved' AND expires_at > COALESCE($3, clock_timestamp()) RETURNING 1",
        tenant_id,
        key,
        now,
    )
    if done is None:
        raise ReservationLapsed(f"the reservation of {key} is {state} and no longer live")


async def record_moved(
    conn: asyncpg.Connection, tenant_id: str, key: str, now: datetime | None = None
) -> None:
    """Count an action the provider already holds as executed spend, whatever became of its
    reservation meanwhile (lapsed, released): the money moved, so the limits must see it,
    even past a cap. Only for a write found at the provider under the action's key."""
    await conn.execute(
        "UPDATE charter.spend_ledger SET state = 'executed', released_at = NULL, executed_at = "
        "COALESCE($3, clock_timestamp()) WHERE tenant_id = $1 AND idempotency_key = $2 AND "
        "state <> 'executed'",
        tenant_id,
        key,
        now,
    )


async def release(conn: asyncpg.Connection, tenant_id: str, key: str, at: datetime) -> bool:
    """Release a live or expired reservation; False if there was none to release (already
    released, executed, or never reserved), so a release is never applied twice."""
    done = await conn.fetchval(
        "UPDATE charter.spend_ledger SET state = 'released', released_at = $3 WHERE "
        "tenant_id = $1 AND idempotency_key = $2 AND state = 'reserved' RETURNING 1",
        tenant_id,
        key,
        at,
    )
    return done is not None


async def entries(conn: asyncpg.Connection, tenant_id: str) -> dict[str, tuple[str, Decimal]]:
    """Every ledger row as `{idempotency_key: (state, amount)}`, for verification."""
    rows = await conn.fetch(
        "SELECT idempotency_key, state, amount FROM charter.spend_ledger WHERE tenant_id = $1",
        tenant_id,
    )
    return {r["idempotency_key"]: (r["state"], Decimal(r["amount"])) for r in rows}
