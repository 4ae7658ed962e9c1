"""One range of a tenant's audit chain, verified in a process of its own.

`python -m charter.services.audit_range_worker` reads one request (JSON on stdin: the
application role's DSN, the tenant, the exported snapshot of the verifier's transaction,
the range's first and last seq, the anchors inside it), verifies the range with
`charter.audit.chain.ChainVerifier` and writes one JSON reply to stdout: the range's
`ChainRange` and ledger events, or `{"problem": ...}` when anything in the range does not
fit. The verifier then walks the whole chain itself, so what a broken chain reports comes
from one sequential walk, exactly as without ranges.

It imports only the chain, the ledger replay, asyncpg and pydantic_core: starting it must
cost a fraction of what verifying its range does (importing the CLI cost more than the
whole verification).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from pydantic_core import from_json

from charter.audit.chain import CLOSING_KINDS, Anchor, ChainEntry, ChainVerifier, typed_entry
from charter.audit.ledger_replay import LedgerEvent, ledger_event

_SELECT = (
    "SELECT tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, "
    "snapshot::text AS snapshot, prev_hash, hash FROM charter.audit_entries "
    "WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
)
BATCH = 2000
_ACTION_KINDS = CLOSING_KINDS | {"action_intent"}


class RangeProblem(Exception):
    """Something in the range does not fit; the sequential walk names it."""


def _entry(r: asyncpg.Record) -> ChainEntry:
    """A row as `audit_trail._readable` reads it when its columns have their types; any
    other row is a problem for the sequential walk, which names it exactly."""
    tenant, seq, kind, occurred_at, workflow_id, run_id, actor, text, prev_hash, hash_ = r
    entry = typed_entry(
        tenant,
        seq,
        kind,
        occurred_at,
        workflow_id,
        run_id,
        actor,
        from_json(text),
        prev_hash,
        hash_,
    )
    if entry is None:
        raise RangeProblem(f"entry {seq} needs a closer look")
    return entry


async def _batches(
    conn: asyncpg.Connection, tenant: str, first: int, last: int
) -> AsyncIterator[list[asyncpg.Record]]:
    """The range's rows a batch at a time, the next batch's query sent before this one is
    handed over (as `audit_trail` reads the whole chain)."""
    pending = asyncio.ensure_future(conn.fetch(_SELECT, tenant, first - 1, last, BATCH))
    while True:
        rows = await pending
        if len(rows) < BATCH:
            if rows:
                yield rows
            return
        pending = asyncio.ensure_future(conn.fetch(_SELECT, tenant, rows[-1]["seq"], last, BATCH))
        await asyncio.sleep(0)
        yield rows


async def verify_range(request: dict[str, Any]) -> dict[str, Any]:
    tenant, first, last = request["tenant"], request["first"], request["last"]
    anchors = [
        Anchor(tenant_id=tenant, seq=s, hash=h, source=src) for s, h, src in request["anchors"]
    ]
    verifier = ChainVerifier(tenant, anchors, first_seq=first)
    actions: list[tuple[str, str]] = []
    events: list[LedgerEvent] = []
    conn = await asyncpg.connect(request["dsn"])
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(request['snapshot'])}'")
            await conn.execute("SELECT set_config('charter.tenant_id', $1, true)", tenant)
            async for rows in _batches(conn, tenant, first, last):
                for row in rows:
                    entry = _entry(row)
                    if (report := verifier.add(entry)) is not None:
                        raise RangeProblem(report.problem or "")
                    key = entry.snapshot.get("idempotency_key")
                    if isinstance(key, str) and entry.kind in _ACTION_KINDS:
                        actions.append((entry.kind, key))
                    if (event := ledger_event(entry)) is not None:
                        events.append(event)
    finally:
        await conn.close()
    part = verifier.as_range(actions)
    if part is None or part.last_seq != last or verifier.finish().problem is not None:
        raise RangeProblem("the range is not whole")
    return {"range": part, "ledger": events}


def _snapshot_id(value: object) -> str:
    """An exported snapshot id (hex digits and dashes), refused if it is anything else."""
    if not isinstance(value, str) or not value or set(value) - set("0123456789ABCDEF-"):
        raise RangeProblem("malformed snapshot id")
    return value


def main() -> None:
    request = json.loads(sys.stdin.readline())
    try:
        reply: dict[str, Any] = asyncio.run(verify_range(request))
    except (RangeProblem, ValueError, RecursionError, TypeError, AttributeError) as exc:
        reply = {"problem": type(exc).__name__}
    sys.stdout.write(json.dumps(reply))


if __name__ == "__main__":
    main()
