"""Appending to and reading the audit trail inside a tenant transaction.

An append is one round trip: `charter.audit_append` locks the tenant's head row, links the
entry to the previous one, inserts it and moves the head, all inside the database. Appends
of one tenant are serialised by that row lock until the caller commits; other tenants have
other head rows and proceed in parallel.

The append runs in the caller's transaction: if the caller's work rolls back, so does its
audit entry, and if the audit write fails, so does the work. The application role cannot
INSERT into the audit table directly; this function is the only way in.

The writer encodes the entry here and the database hashes it; the verifier in
`charter.audit.chain` has its own encoder and hashes with hashlib, so a bug on one side shows up
as a broken chain instead of being shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import from_json

from charter.audit.chain import GENESIS, AuditEntry, ChainEntry, MalformedEntry, typed_entry
from schemas import AuditHead

_APPEND = (
    "SELECT entry_seq, entry_hash FROM charter.audit_append($1, $2::text[], $3::text[], "
    "$4::text[], $5::text[], $6::text[], $7::text[]::jsonb[], $8::text[], $9::text[], $10::text[])"
)
MAX_BATCH = 1000


class AuditEvent(BaseModel):
    """One event of a run, before the database gives it a place in the chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    snapshot: dict[str, Any]
    actor: str
    workflow_id: str | None = None
    run_id: str | None = None


class AuditWriteRefused(RuntimeError):
    """The database did not return the appended entry: never treated as success."""


def _encode(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def as_stored(value: Any) -> Any:
    """The value exactly as jsonb will give it back, so that what is hashed is what is stored.

    jsonb keeps numbers as `numeric`: it has no negative zero, and prints large floats in
    plain digits, which Python then reads back as an int. Normalise those two cases the same
    way before hashing (the exact decimal digits of the float's shortest repr).
    """
    if isinstance(value, dict):
        return {str(k): as_stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_stored(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("audit snapshots cannot hold NaN or infinity")
        if value == 0.0:
            return 0.0
        if abs(value) >= 1e16:  # every such float is integral; jsonb prints it without exponent
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("audit snapshots cannot hold NUL characters (jsonb refuses them)")
    return value


def storable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as it will be hashed and stored; ValueError if jsonb cannot hold it."""
    stored: dict[str, Any] = as_stored(json.loads(_encode(snapshot)))
    return stored


def encoded_pieces(
    *,
    tenant_id: str,
    kind: str,
    occurred_at: str,
    workflow_id: str | None,
    run_id: str | None,
    actor: str,
    snapshot: dict[str, Any],
) -> tuple[str, str, str]:
    """The entry's canonical JSON (sorted keys) split around prev_hash and seq.

    Sorted key order: actor, kind, occurred_at, prev_hash, run_id, seq, snapshot,
    tenant_id, workflow_id. The database fills in the two gaps under the head lock.
    """
    before_prev = (
        '{"actor":'
        + _encode(actor)
        + ',"kind":'
        + _encode(kind)
        + ',"occurred_at":'
        + _encode(occurred_at)
        + ',"prev_hash":"'
    )
    before_seq = '","run_id":' + _encode(run_id) + ',"seq":'
    after_seq = (
        ',"snapshot":'
        + _encode(snapshot)
        + ',"tenant_id":'
        + _encode(tenant_id)
        + ',"workflow_id":'
        + _encode(workflow_id)
        + "}"
    )
    return before_prev, before_seq, after_seq


async def append_many(
    conn: asyncpg.Connection, tenant_id: str, events: Sequence[AuditEvent]
) -> list[AuditHead]:
    """Append events in order in the caller's transaction; one round trip for all of them."""
    if not 1 <= len(events) <= MAX_BATCH:
        raise ValueError(f"append 1 to {MAX_BATCH} audit events at a time, not {len(events)}")
    columns: list[list[str | None]] = [[] for _ in range(9)]
    for event in events:
        occurred_at = datetime.now(UTC).isoformat(timespec="microseconds")
        stored = storable(event.snapshot)
        pieces = encoded_pieces(
            tenant_id=tenant_id,
            kind=event.kind,
            occurred_at=occurred_at,
            workflow_id=event.workflow_id,
            run_id=event.run_id,
            actor=event.actor,
            snapshot=stored,
        )
        values = (event.kind, occurred_at, event.workflow_id, event.run_id, event.actor)
        for column, value in zip(columns, (*values, _encode(stored), *pieces), strict=True):
            column.append(value)
    rows = await conn.fetch(_APPEND, tenant_id, *columns)
    if len(rows) != len(events):
        raise AuditWriteRefused(
            f"audit append for tenant {tenant_id!r} stored {len(rows)} of {len(events)} entries"
        )
    return [AuditHead(seq=r["entry_seq"], hash=r["entry_hash"]) for r in rows]


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
    """Append one entry in the caller's transaction; return the new head. One round trip."""
    event = AuditEvent(
        kind=kind, snapshot=snapshot, actor=actor, workflow_id=workflow_id, run_id=run_id
    )
    (appended,) = await append_many(conn, tenant_id, [event])
    return appended


async def head(conn: asyncpg.Connection, tenant_id: str) -> AuditHead:
    row = await conn.fetchrow(
        "SELECT seq, hash FROM charter.audit_heads WHERE tenant_id = $1", tenant_id
    )
    return AuditHead(seq=row["seq"], hash=row["hash"]) if row else AuditHead(seq=0, hash=GENESIS)


_SELECT_AFTER = (
    "SELECT tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, "
    "snapshot::text AS snapshot, prev_hash, hash FROM charter.audit_entries "
    "WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)


async def _rows(
    conn: asyncpg.Connection, tenant_id: str, batch: int
) -> AsyncIterator[asyncpg.Record]:
    last = 0
    while True:
        rows = await conn.fetch(_SELECT_AFTER, tenant_id, last, batch)
        if not rows:
            return
        for r in rows:
            yield r
        last = rows[-1]["seq"]


async def _prefetched_batches(
    conn: asyncpg.Connection, tenant_id: str, batch: int
) -> AsyncGenerator[list[asyncpg.Record], None]:
    """The same rows a batch at a time, the query for the next batch sent before this one
    is handed over: the server reads and encodes it while the caller works on this one.

    A caller that stops early must close the generator (`contextlib.aclosing`): closing
    waits for the query in flight, so the connection is free for the next statement."""
    pending = asyncio.ensure_future(conn.fetch(_SELECT_AFTER, tenant_id, 0, batch))
    try:
        while True:
            rows = await pending
            if len(rows) < batch:  # the last batch: nothing to fetch ahead
                if rows:
                    yield rows
                return
            pending = asyncio.ensure_future(
                conn.fetch(_SELECT_AFTER, tenant_id, rows[-1]["seq"], batch)
            )
            await asyncio.sleep(0)  # lets the task send its query before the caller works
            yield rows
    finally:
        if not pending.done():
            with contextlib.suppress(Exception):
                await pending


async def entries(
    conn: asyncpg.Connection, tenant_id: str, *, batch: int = 1000
) -> AsyncIterator[AuditEntry]:
    """Every entry of a tenant in chain order, streamed in batches."""
    # pydantic's JSON parser: the same values as json.loads, in a third of the time (reading
    # is most of `charter audit verify` on a long chain).
    async for r in _rows(conn, tenant_id, batch):
        yield AuditEntry(**{**dict(r), "snapshot": from_json(r["snapshot"])})


def _readable(tenant_id: str, r: asyncpg.Record) -> ChainEntry | MalformedEntry:
    """One row as the verifier reads it. The columns' types are checked here; a row that
    does not pass goes through `AuditEntry` validation, which names what is wrong exactly."""
    tenant, seq, kind, occurred_at, workflow_id, run_id, actor, text, prev_hash, hash_ = r
    try:
        snapshot = from_json(text)
    except (ValueError, RecursionError):
        snapshot = None
    typed = typed_entry(
        tenant, seq, kind, occurred_at, workflow_id, run_id, actor, snapshot, prev_hash, hash_
    )
    if typed is not None:
        return typed
    try:
        entry = AuditEntry(**{**dict(r), "snapshot": from_json(r["snapshot"])})
    except (ValidationError, ValueError, RecursionError) as exc:
        problem = str(exc).splitlines()
        detail = "; ".join(problem[1:3]) if isinstance(exc, ValidationError) else problem[0]
        return MalformedEntry(tenant_id=tenant_id, seq=r["seq"], problem=detail[:300])
    return ChainEntry(*(getattr(entry, f) for f in ChainEntry._fields))


async def readable_entries(
    conn: asyncpg.Connection, tenant_id: str, *, batch: int = 1000
) -> AsyncGenerator[ChainEntry | MalformedEntry, None]:
    """The same, for the verifier: an entry that cannot be read is yielded as what is wrong
    with it (tenant, seq, problem), so one bad row never hides the rest of the report.

    Entries come as plain tuples, not models (the verifier reads 100,000 entries in the
    time a model per entry took for a third of them), and the next batch is fetched while
    the caller checks this one. A caller that stops early closes the generator."""
    batches = _prefetched_batches(conn, tenant_id, batch)
    try:
        async for rows in batches:
            for r in rows:
                yield _readable(tenant_id, r)
    finally:
        await batches.aclose()
