"""Row-level security on the hot queries of a run, against the same queries without it.

The hot queries are what a run's activities read in their tenant transaction: the pinned
constitution and its approvers (start_run), the books (observe: accounts, vendors, open
invoices with what the bank already paid), the recorded proposal (act) and the audit head.
Each is the application's own code (`charter.storage`, the demo connector's reader).

- RLS:    the application role, every policy applied (the production path)
- no RLS: the same statements on the same data in the same tenant transaction, as the
          superuser that owns the cluster (RLS is bypassed for it)

Both sides alternate query set by query set, so the machine's load weighs on both alike.
PostgreSQL: CHARTER_BENCH_DATABASE_URL or CHARTER_TEST_DATABASE_URL (an admin DSN), else an
embedded server in a temporary directory.

    python bench/rls.py [--tenants 20] [--sets 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/rls.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench import scratch  # noqa: E402
from bench.harness import arguments, parse, spread, turns  # noqa: E402
from bench.measures import Measure, write  # noqa: E402
from charter.config.settings import app_dsn  # noqa: E402
from charter.connectors.demo import DemoBooksReader  # noqa: E402
from charter.demo.seed import seed  # noqa: E402
from charter.storage import Database, audit_trail, constitution_versions, roster, runs  # noqa: E402


class BooksReader(DemoBooksReader):
    """The connector's reader with its queries as they are, without the credential check
    (that is not a query, and holds no RLS)."""

    def _authenticate(self, connector: str) -> None:
        return None


async def hot_queries(db: Database, tenant: str) -> None:
    async with db.tenant(tenant) as conn:
        await constitution_versions.get(conn, tenant)
        await roster.approvers(conn, tenant)
        await roster.approver_roles(conn, tenant)
    async with db.tenant(tenant) as conn:
        await BooksReader(conn, tenant, {}).snapshot("payables", [])
    async with db.tenant(tenant) as conn:
        await runs.get_proposal(conn, tenant, "bench-wf", "p1")
        await audit_trail.head(conn, tenant)


async def one_set(db: Database, tenants: list[str], i: int) -> float:
    start = time.perf_counter()
    await hot_queries(db, tenants[i % len(tenants)])
    return time.perf_counter() - start


async def measure(args: argparse.Namespace, admin: str) -> None:
    app = await Database.connect(app_dsn(admin), max_size=2)
    # The superuser's pool: Database.connect refuses such a role, which is the point here.
    bypass = Database(await asyncpg.create_pool(admin, min_size=1, max_size=2))
    try:
        tenants = [f"bench-rls-{i}" for i in range(args.tenants)]
        started = time.perf_counter()
        for tenant in tenants:
            await seed(app, tenant, template="acme", actor="bench")
        print(f"seeded {len(tenants)} tenants in {time.perf_counter() - started:.0f}s (not timed)")
        # The bench must compare what it claims: outside a tenant transaction RLS shows the
        # application nothing, and the bypassing role everything.
        count = "SELECT count(DISTINCT tenant_id) FROM charter.invoices"
        if await app.pool.fetchval(count) != 0 or await bypass.pool.fetchval(count) < 2:
            raise RuntimeError("RLS is not applied to one side and bypassed on the other")
        sides = {"RLS": app, "no RLS": bypass}
        for db in sides.values():  # warm up: plans, buffers
            for i in range(50):
                await one_set(db, tenants, i)
        seconds: dict[str, list[float]] = {k: [] for k in sides}
        ratios = []
        for _ in range(args.rounds):
            spent = dict.fromkeys(sides, 0.0)
            for i, k in turns(list(sides), args.sets):
                spent[k] += await one_set(sides[k], tenants, i)
            for k, v in spent.items():
                seconds[k].append(v / args.sets)
            ratios.append(spent["RLS"] / spent["no RLS"])
        rls, plain = (statistics.median(seconds[k]) * 1000 for k in sides)
        ratio = statistics.median(ratios)
        print(f"{'RLS':<7} {rls:6.2f} ms per set of hot queries")
        print(f"{'no RLS':<7} {plain:6.2f} ms per set of hot queries")
        print(f"RLS/no RLS {ratio:.2f}x (per round {spread(ratios)})")
    finally:
        await app.close()
        await bypass.close()
    write(
        args.json,
        [
            Measure(
                name="RLS on the hot queries vs the same queries without RLS (time)",
                now=ratio,
                target=1.1,
                better="lower",
                detail=f"{rls:.2f} vs {plain:.2f} ms per set of 8 queries in 3 transactions",
            )
        ],
    )


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--tenants", type=int, default=20, help="seeded tenants")
    parser.add_argument("--sets", type=int, default=1000, help="query sets per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median)")
    args = parse(parser)
    async with scratch.postgres() as admin:
        await measure(args, admin)


if __name__ == "__main__":
    asyncio.run(main())
