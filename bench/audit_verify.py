"""`charter audit verify` of one tenant's chain against a plain SELECT of the same rows.

The chain is written through `charter.audit_append` (batches of 1,000, not timed), with the
snapshots a run writes (verdicts, intents, results). Then, alternating round by round:

- SELECT: one query fetching every column of the tenant's entries in seq order, through
          the application role inside the tenant's transaction
- verify: what the CLI does for a tenant (`charter.services.audit_verification.verify_tenants`): stream the entries and
          recompute every hash with the verifier's own encoder

PostgreSQL: CHARTER_BENCH_DATABASE_URL or CHARTER_TEST_DATABASE_URL (an admin DSN), else an
embedded server in a temporary directory.

    python bench/audit_verify.py [--entries 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/audit_verify.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench import scratch  # noqa: E402
from bench.harness import arguments, parse, rotated, spread  # noqa: E402
from bench.measures import Measure, write  # noqa: E402
from charter.audit.chain import verify_chain  # noqa: E402
from charter.config.settings import app_dsn  # noqa: E402
from charter.services.audit_verification import verify_tenants  # noqa: E402
from charter.storage import Database, audit_trail  # noqa: E402
from charter.storage.audit_trail import AuditEvent  # noqa: E402

TENANT = "bench-verify"

_SELECT = (
    "SELECT tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, snapshot::text, "
    "prev_hash, hash FROM charter.audit_entries WHERE tenant_id = $1 ORDER BY seq"
)


def events(run: int) -> list[AuditEvent]:
    """What one auto-executed proposal leaves in the trail."""
    wf, key = f"wf-{run}", f"wf-{run}/p1"
    proposal = {
        "action": "schedule_payment",
        "amount": f"{1000 + run % 997}.18",
        "counterparty": "Amazon Web Services",
        "reference": f"INV-{run}",
        "confidence": 0.93,
    }
    verdict = {
        "outcome": "execute",
        "matched": ["allow-verified-vendor-bills"],
        "confidence": 0.93,
        "explanation": "Allowed by allow-verified-vendor-bills at confidence 0.93.",
    }
    return [
        AuditEvent(
            kind="gate_verdict",
            snapshot={"proposal": proposal, "verdict": verdict},
            actor="gate",
            workflow_id=wf,
            run_id="r",
        ),
        AuditEvent(
            kind="action_intent",
            snapshot={"idempotency_key": key, "attempt": 1, "proposal": proposal},
            actor="agent:payables",
            workflow_id=wf,
            run_id="r",
        ),
        AuditEvent(
            kind="action_result",
            snapshot={"idempotency_key": key, "connector_reference": f"pay-{run}"},
            actor="connector:demo-books",
            workflow_id=wf,
            run_id="r",
        ),
    ]


async def fill(db: Database, count: int) -> None:
    run = 0
    written = 0
    while written < count:
        batch: list[AuditEvent] = []
        while len(batch) < min(audit_trail.MAX_BATCH, count - written):
            batch.extend(events(run))
            run += 1
        batch = batch[: min(audit_trail.MAX_BATCH, count - written)]
        async with db.tenant(TENANT) as conn:
            await audit_trail.append_many(conn, TENANT, batch)
        written += len(batch)


async def select_all(db: Database) -> float:
    start = time.perf_counter()
    async with db.tenant(TENANT) as conn:
        rows = await conn.fetch(_SELECT, TENANT)
    assert rows
    return time.perf_counter() - start


async def verify(db: Database, count: int) -> float:
    start = time.perf_counter()
    (report,) = await verify_tenants(db, [TENANT])
    spent = time.perf_counter() - start
    if not report.ok or report.entries != count:
        raise RuntimeError(f"the benchmarked chain does not verify: {report}")
    return spent


async def breakdown(db: Database, count: int) -> str:
    """CPU time of this process: the SELECT, reading the entries as the verifier does
    (decoding each snapshot into a `ChainEntry`), and recomputing the chain."""
    start = time.process_time()
    await select_all(db)
    selected = time.process_time()
    async with db.tenant(TENANT) as conn:
        entries = [e async for e in audit_trail.readable_entries(conn, TENANT)]
    read = time.process_time()
    report = verify_chain(TENANT, entries)
    hashed = time.process_time()
    assert report.ok and report.entries == count
    return (
        f"SELECT {selected - start:.2f}, read entries {read - selected:.2f}, "
        f"recompute hashes {hashed - read:.2f}"
    )


async def measure(args: argparse.Namespace, admin: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute("INSERT INTO charter.tenants (tenant_id, name) VALUES ($1, $1)", TENANT)
    finally:
        await conn.close()
    db = await Database.connect(app_dsn(admin))
    try:
        started = time.perf_counter()
        await fill(db, args.entries)
        print(f"wrote {args.entries} entries in {time.perf_counter() - started:.0f}s (not timed)")
        await select_all(db)  # warm up: buffers, plans
        seconds: dict[str, list[float]] = {"SELECT": [], "verify": []}
        ratios = []
        for r in range(args.rounds):
            order = rotated(["SELECT", "verify"], r)
            this = {
                k: await (select_all(db) if k == "SELECT" else verify(db, args.entries))
                for k in order
            }
            for k, v in this.items():
                seconds[k].append(v)
            ratios.append(this["verify"] / this["SELECT"])
        stages = await breakdown(db, args.entries)
        sel, ver = (statistics.median(seconds[k]) for k in ("SELECT", "verify"))
        ratio = statistics.median(ratios)
        print(f"SELECT of {args.entries} entries  {sel:6.2f}s")
        print(f"verify of {args.entries} entries  {ver:6.2f}s")
        print(f"verify/SELECT {ratio:.2f}x (per round {spread(ratios)})")
        print("where verify's time goes (CPU seconds of this process): " + stages)
    finally:
        await db.close()
    write(
        args.json,
        [
            Measure(
                name=f"`charter audit verify` of {args.entries:,} entries vs a plain SELECT (time)",
                now=ratio,
                target=2.0,
                better="lower",
                detail=f"{ver:.2f} vs {sel:.2f} s; CPU s: {stages}",
            )
        ],
    )


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--entries", type=int, default=100_000, help="entries in the chain")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    args = parse(parser)
    async with scratch.postgres() as admin:
        await measure(args, admin)


if __name__ == "__main__":
    asyncio.run(main())
