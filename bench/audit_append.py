"""Audit append throughput against plain INSERTs of the same rows, side by side in one run.

Each operation is what an activity does: one tenant transaction (BEGIN, set the tenant,
write, COMMIT) through the application role's pool, N workers in parallel.

- plain:  INSERT of a fully formed row into a copy of audit_entries (same indexes, same RLS)
- append: `audit_trail.append` -> charter.audit_append, one round trip, hashed in PostgreSQL
- group:  the same function through the group committer: appends of one tenant that
          arrive while its previous batch commits share the next transaction
- naive:  the foundation's append (lock the head, read it, hash in Python, INSERT, UPDATE:
          four round trips), on copies of the audit tables, for reference

Scenarios: one busy tenant (every worker appends to the same chain), as many tenants as
workers (each worker its own tenant) and 64 tenants (each worker cycles through its own
share of them). PostgreSQL: CHARTER_BENCH_DATABASE_URL or CHARTER_TEST_DATABASE_URL
(an admin DSN), else an embedded server in a temporary directory.

    python bench/audit_append.py [--ops 1000] [--slice 100] [--workers 8] [--rounds 3]
                                [--tenants 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/audit_append.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench import scratch  # noqa: E402
from bench.harness import arguments, parse, spread, turns  # noqa: E402
from bench.measures import Measure, write  # noqa: E402
from charter.audit.chain import GENESIS, entry_hash, verify_chain  # noqa: E402
from charter.config.settings import app_dsn  # noqa: E402
from charter.storage import Database, audit_trail  # noqa: E402
from charter.storage.group_commit import group_for  # noqa: E402

SNAPSHOT = {
    "proposal": {"action": "schedule_payment", "amount": "3412.18", "counterparty": "aws"},
    "verdict": {"outcome": "execute", "matched": ["pay-verified-vendor"], "confidence": 0.93},
}

BENCH_SCHEMA = """
CREATE SCHEMA bench AUTHORIZATION charter_owner;
GRANT USAGE ON SCHEMA bench TO charter_app;
CREATE TABLE bench.plain (LIKE charter.audit_entries INCLUDING ALL);
CREATE TABLE bench.naive (LIKE charter.audit_entries INCLUDING ALL);
CREATE TABLE bench.naive_heads (LIKE charter.audit_heads INCLUDING ALL);
"""


async def _prepare(admin: str, tenants: list[str]) -> None:
    """The comparison tables beside Charter's, and the tenants, in a migrated database."""
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(BENCH_SCHEMA)
        for table in ("plain", "naive", "naive_heads"):
            await conn.execute(
                f"ALTER TABLE bench.{table} ENABLE ROW LEVEL SECURITY;"
                f"ALTER TABLE bench.{table} FORCE ROW LEVEL SECURITY;"
                f"CREATE POLICY tenant ON bench.{table} USING "
                "(tenant_id = current_setting('charter.tenant_id', true));"
                f"GRANT SELECT, INSERT, UPDATE ON bench.{table} TO charter_app;"
            )
        await conn.executemany(
            "INSERT INTO charter.tenants (tenant_id, name) VALUES ($1, $1)", [(t,) for t in tenants]
        )
    finally:
        await conn.close()


def _row(tenant: str, seq: int) -> tuple[object, ...]:
    occurred_at = datetime.now(UTC).isoformat(timespec="microseconds")
    return (
        tenant,
        seq,
        "gate_verdict",
        occurred_at,
        "wf",
        "run",
        "gate",
        json.dumps(SNAPSHOT),
        GENESIS,
        secrets.token_hex(32),
    )


async def plain(db: Database, tenant: str, seq: int) -> None:
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "INSERT INTO bench.plain (tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, "
            "snapshot, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10)",
            *_row(tenant, seq),
        )


async def append(db: Database, tenant: str, seq: int) -> None:
    async with db.tenant(tenant) as conn:
        await audit_trail.append(
            conn, tenant, "gate_verdict", SNAPSHOT, actor="gate", workflow_id="wf", run_id="run"
        )


async def group(db: Database, tenant: str, seq: int) -> None:
    await group_for(db).append(
        tenant, "gate_verdict", SNAPSHOT, actor="gate", workflow_id="wf", run_id="run"
    )


async def naive(db: Database, tenant: str, seq: int) -> None:
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "INSERT INTO bench.naive_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING",
            tenant,
            GENESIS,
        )
        head = await conn.fetchrow(
            "SELECT seq, hash FROM bench.naive_heads WHERE tenant_id = $1 FOR UPDATE", tenant
        )
        assert head is not None
        n = head["seq"] + 1
        occurred_at = datetime.now(UTC).isoformat(timespec="microseconds")
        snapshot = json.loads(json.dumps(SNAPSHOT))
        digest = entry_hash(
            tenant_id=tenant,
            seq=n,
            kind="gate_verdict",
            occurred_at=occurred_at,
            workflow_id="wf",
            run_id="run",
            actor="gate",
            snapshot=snapshot,
            prev_hash=head["hash"],
        )
        await conn.execute(
            "INSERT INTO bench.naive (tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, "
            "snapshot, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10)",
            tenant,
            n,
            "gate_verdict",
            occurred_at,
            "wf",
            "run",
            "gate",
            json.dumps(snapshot),
            head["hash"],
            digest,
        )
        await conn.execute(
            "UPDATE bench.naive_heads SET seq = $2, hash = $3 WHERE tenant_id = $1",
            tenant,
            n,
            digest,
        )


Op = Callable[[Database, str, int], Awaitable[None]]
METHODS: list[tuple[str, Op]] = [
    ("plain INSERT", plain),
    ("audit append", append),
    ("group append", group),
    ("naive append", naive),
]


async def _run(db: Database, op: Op, tenants: list[str], ops: int, workers: int) -> float:
    """Operations per second with `workers` in flight. Worker i uses tenants i, i + workers,
    i + 2 * workers... in turn: its own share, so workers contend only when there are fewer
    tenants than workers."""
    counter = iter(range(ops))
    base = int(time.time_ns() // 1000) * 1000  # unique seqs for the plain table across rounds

    async def worker(i: int) -> None:
        share = tenants[i % len(tenants) :: workers] or tenants[i % len(tenants) :][:1]
        for k, n in enumerate(counter):
            await op(db, share[k % len(share)], base + n + 1)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    return ops / (time.perf_counter() - start)


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--ops", type=int, default=1000, help="operations per measurement")
    parser.add_argument("--workers", type=int, default=8, help="concurrent transactions")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; the median is kept"
    )
    parser.add_argument("--tenants", type=int, default=64, help="tenants of the widest scenario")
    parser.add_argument("--slice", type=int, default=100, help="operations per alternating slice")
    args = parse(parser)
    many = [f"bench-{i}" for i in range(max(args.workers, args.tenants))]
    async with scratch.postgres() as admin:
        await _prepare(admin, many)
        write(args.json, await _measure(args, admin, many))


async def _measure(args: argparse.Namespace, admin: str, many: list[str]) -> list[Measure]:
    db = await Database.connect(app_dsn(admin), min_size=args.workers, max_size=args.workers)
    try:
        version = await db.pool.fetchval("SHOW server_version")
        print(
            f"PostgreSQL {version}; {args.workers} workers; {args.ops} appends per method per "
            f"round in alternating slices of {args.slice}; median of {args.rounds} rounds "
            "(rates and per-round ratios)\n"
        )
        scenarios = {
            "one tenant": many[:1],
            f"{args.workers} tenants": many[: args.workers],
            f"{args.tenants} tenants": many[: args.tenants],
        }
        rates: dict[tuple[str, str], list[float]] = {}
        ratios: dict[tuple[str, str], list[float]] = {}
        slices = max(1, args.ops // args.slice)
        for _ in range(args.rounds):
            for scenario, tenants in scenarios.items():
                # Short slices of each method in turn, the order rotating slice by slice:
                # every method sees the same drifting load on a shared machine.
                spent = {label: 0.0 for label, _ in METHODS}
                for _, (label, op) in turns(METHODS, slices):
                    rate = await _run(db, op, tenants, args.slice, args.workers)
                    spent[label] += args.slice / rate
                for label, seconds in spent.items():
                    rates.setdefault((scenario, label), []).append(slices * args.slice / seconds)
                    ratios.setdefault((scenario, label), []).append(spent["plain INSERT"] / seconds)
        print(f"{'scenario':<12} {'method':<14} {'rows/s':>8} {'vs plain':>9}  per-round ratios")
        for scenario in scenarios:
            for label, _ in METHODS:
                rate = statistics.median(rates[(scenario, label)])
                each = ratios[(scenario, label)]
                print(
                    f"{scenario:<12} {label:<14} {rate:>8.0f} "
                    f"{statistics.median(each):>8.2f}x  {spread(each)}"
                )
        for tenant in many:
            async with db.tenant(tenant) as conn:
                entries = [e async for e in audit_trail.entries(conn, tenant)]
            assert verify_chain(tenant, entries).ok, tenant
        print("\nevery benchmarked chain verifies")
    finally:
        await db.close()
    measures = []
    for scenario, target in zip(scenarios, (0.85, 0.9, 0.9), strict=True):
        ratio = {label: statistics.median(ratios[(scenario, label)]) for label, _ in METHODS}
        plain_rate = statistics.median(rates[(scenario, "plain INSERT")])
        append_rate = statistics.median(rates[(scenario, "audit append")])
        measures.append(
            Measure(
                name=f"audit append in a transaction vs plain INSERT, {scenario}, "
                f"{args.workers} writers",
                now=ratio["audit append"],
                target=target,
                better="higher",
                detail=f"{append_rate:.0f} vs {plain_rate:.0f} rows/s; group append (stand-alone "
                f"entries) {ratio['group append']:.2f}x",
            )
        )
    return measures


if __name__ == "__main__":
    asyncio.run(main())
