"""Walking one tenant's audit chain for `verify`: in ranges side by side on a long chain.

Each entry carries its predecessor's hash, so ranges of a chain verify independently and
link at their ends. On a chain of `PARALLEL_FROM` entries or more (and a `Database` that
knows its DSN), this process walks the first range while worker processes
(`charter.services.audit_range_worker`, which import neither the CLI nor the rest of
Charter) verify the others; each range is then joined onto the chain before it, checking
the link. Every reader sees the same snapshot: the walk's transaction exports it and each
worker's transaction imports it, so the ranges and the spend ledger are one state.

A worker that reports a problem, fails, or does not answer in time has its range walked
again here, with the whole chain, sequentially: a broken chain is reported by the same
walk, word for word, as without ranges. A problem in the first range is already that
walk's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Any, NamedTuple

import asyncpg

from charter.audit.chain import Anchor, ChainEntry, ChainRange, ChainReport, ChainVerifier
from charter.audit.ledger_replay import Ledger, LedgerEvent, add_to_ledger, apply_to_ledger
from charter.storage import Database, audit_trail, ledger

#: Below this many entries, starting a process costs more than it saves.
PARALLEL_FROM = 20_000
#: Worker processes beside this one: one per further core.
MAX_WORKERS = max(1, (os.cpu_count() or 1) - 1)
#: A worker that has not answered by then is stopped and its range walked here.
RANGE_DEADLINE_S = 600.0
#: How much more than an even share this process walks: a worker spends its first tenths
#: of a second starting Python and importing the chain (about a third of its range's time).
FIRST_RANGE_EXTRA = 0.3
_HEAD = "SELECT max(seq) FROM charter.audit_entries WHERE tenant_id = $1"


class _Walked(NamedTuple):
    """A walk's outcome: the report naming the first entry that does not fit (None if all
    of them fit) and the ledger the entries walked say."""

    broken: ChainReport | None
    rebuilt: Ledger


async def walk_chain(
    db: Database, tenant: str, anchors: list[Anchor]
) -> tuple[ChainReport, Ledger, Ledger]:
    """(the chain's report, the ledger the trail says, the ledger as stored)."""
    async with db.tenant(tenant, snapshot=True) as conn:
        head = await conn.fetchval(_HEAD, tenant) or 0
        report: ChainReport | None = None
        workers = min(MAX_WORKERS, max(1, head // max(1, PARALLEL_FROM // 2)))
        if db.dsn is not None and head >= PARALLEL_FROM:
            report, rebuilt = await _in_ranges(conn, db.dsn, tenant, anchors, head, workers)
        if report is None:
            verifier = ChainVerifier(tenant, anchors)
            broken, rebuilt = await _walk(conn, tenant, verifier)
            report = broken or verifier.finish()
        stored = await ledger.entries(conn, tenant)
    return report, rebuilt, stored


async def _walk(
    conn: asyncpg.Connection, tenant: str, verifier: ChainVerifier, until: int | None = None
) -> _Walked:
    """The chain from its first entry (to `until`, if given), sequentially, up to the first
    entry that does not fit (the chain's report then). The ledger is rebuilt as the entries stream by: keeping 100,000 entries until
    the end made the garbage collector walk them over and over."""
    rebuilt: Ledger = {}
    # Each entry is checked as it arrives, the next batch on its way meanwhile; the event
    # loop (an activity's heartbeat) runs between batches.
    async with contextlib.aclosing(audit_trail.readable_entries(conn, tenant)) as entries:
        async for entry in entries:
            if until is not None and entry.seq > until:
                break
            if (broken := verifier.add(entry)) is not None:
                return _Walked(broken, rebuilt)
            if isinstance(entry, ChainEntry):
                add_to_ledger(rebuilt, entry)
    return _Walked(None, rebuilt)


def _ranges(head: int, workers: int) -> list[tuple[int, int]]:
    """[first, last] of each range: this process's first, a little longer than the rest."""
    share = head / (workers + 1)
    cut = min(head - workers, int(share * (1 + FIRST_RANGE_EXTRA)))
    rest = (head - cut) / workers
    bounds = [0, cut, *(cut + round(rest * i) for i in range(1, workers)), head]
    return [(bounds[i] + 1, bounds[i + 1]) for i in range(len(bounds) - 1)]


async def _in_ranges(
    conn: asyncpg.Connection,
    dsn: str,
    tenant: str,
    anchors: list[Anchor],
    head: int,
    workers: int,
) -> tuple[ChainReport | None, Ledger]:
    """The chain walked in ranges: its report, or None if the whole chain must be walked
    sequentially; and the ledger its entries say."""
    snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
    (first, *others) = _ranges(head, workers)
    tasks = [
        asyncio.ensure_future(
            _range_in_worker(
                dsn, tenant, snapshot, lo, hi, [a for a in anchors if lo <= a.seq <= hi]
            )
        )
        for lo, hi in others
    ]
    try:
        verifier = ChainVerifier(tenant, anchors)
        broken, rebuilt = await _walk(conn, tenant, verifier, until=first[1])
        if broken is not None:
            return broken, rebuilt  # the first entry that does not fit: the sequential report
        for task in tasks:
            reply = await task
            if reply is None or not verifier.joined(reply[0]):
                return None, {}
            for event in reply[1]:
                apply_to_ledger(rebuilt, event)
        return verifier.finish(), rebuilt
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _range_in_worker(
    dsn: str, tenant: str, snapshot: str, first: int, last: int, anchors: list[Anchor]
) -> tuple[ChainRange, list[LedgerEvent]] | None:
    """One range verified by a worker process: its `ChainRange` and ledger events, or None
    (a problem in the range, a worker that failed or ran out of time)."""
    request = {
        "dsn": dsn,  # on its stdin, never in its arguments or environment
        "tenant": tenant,
        "snapshot": snapshot,
        "first": first,
        "last": last,
        "anchors": [[a.seq, a.hash, a.source] for a in anchors],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "charter.services.audit_range_worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(
            process.communicate(json.dumps(request).encode() + b"\n"), RANGE_DEADLINE_S
        )
    except TimeoutError:
        await _stopped(process)
        return None
    except asyncio.CancelledError:
        await _stopped(process)
        raise
    if process.returncode != 0:
        return None
    return _parsed(out)


async def _stopped(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


def _parsed(out: bytes) -> tuple[ChainRange, list[LedgerEvent]] | None:
    try:
        reply: dict[str, Any] = json.loads(out)
        if "problem" in reply:
            return None
        fields = reply["range"]
        part = ChainRange._make([*fields[:-1], [(kind, key) for kind, key in fields[-1]]])
        return part, [LedgerEvent(*e) for e in reply["ledger"]]
    except (ValueError, KeyError, TypeError):
        return None
