"""Load: many runs across tenants waiting on humans, then every decision at once, half by
update and half by signal, on one worker process or several. `make load` runs the full size
and prints the table; tests/faults/test_load.py runs a small one in `make faults`.

    python -m tests.support.faults.load --runs 500 --tenants 20 --workers 1

Each run pays one invoice of its own from an unverified vendor, so each escalates; after
the decisions the books say what happened: a payment per approved invoice is nothing lost,
a second payment is a double.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError

from charter.config.settings import Settings, app_dsn
from charter.demo.seed import enroll_members, seed
from charter.storage import Database
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput, Decision
from starter import start_run
from tests.support.faults.servers import Postgres, Temporal, WorkerProcess, worker_env
from tests.support.scratch import migrated_database
from tests.support.signing import signed
from tests.support.vault import session_vault
from workflows import AgentLoop

QUEUE = "charter-load"


@dataclass
class LoadReport:
    runs: int
    tenants: int
    workers: int
    completed: int = 0
    lost: int = 0
    doubled: int = 0
    accepted: int = 0
    refused: int = 0
    timed_out: int = 0
    """Updates whose caller gave up waiting (the decision may still have been recorded)."""
    latencies: list[float] = field(default_factory=list)
    """Seconds from sending a decision to its action row's `executed_at`."""
    worker_mib: float = 0.0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    def table(self) -> str:
        rows = [
            ("runs / tenants / workers", f"{self.runs} / {self.tenants} / {self.workers}"),
            ("runs completed", str(self.completed)),
            ("lost (approved, not paid)", str(self.lost)),
            ("doubled (paid twice)", str(self.doubled)),
            (
                "decisions accepted / refused / caller timed out",
                f"{self.accepted} / {self.refused} / {self.timed_out}",
            ),
            ("decision -> execution p50", f"{self.percentile(0.50):.2f} s"),
            ("decision -> execution p95", f"{self.percentile(0.95):.2f} s"),
            ("worker memory (RSS, max)", f"{self.worker_mib:.0f} MiB"),
            ("errors (callers, worker logs)", str(len(self.errors))),
            ("wall time", f"{self.seconds:.0f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


async def _books(db: Database, tenant: str, invoices: list[str]) -> None:
    """One invoice per run, each from the unverified vendor: each run escalates. Amounts
    differ by a cent: equal amounts from one vendor are possible duplicates, which the act
    re-reads at execution and sends back to a human (what the approver saw has changed)."""
    async with db.tenant(tenant) as conn:
        await conn.executemany(
            "INSERT INTO charter.invoices (tenant_id, invoice_id, vendor_id, amount, due_date, "
            "status, memo) VALUES ($1, $2, 'bluebird', $3, $4, 'open', 'load')",
            [
                (tenant, i, Decimal("100.00") + Decimal(n) / 100, date.today() + timedelta(days=14))
                for n, i in enumerate(invoices)
            ],
        )


async def _waiting(handle: WorkflowHandle[Any, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = await handle.query(AgentLoop.state)
            if any(p.status == "awaiting_decision" for p in state.proposals):
                return
        except Exception:  # a worker busy starting runs may not answer at once
            pass
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{handle.id} never waited for a decision")


def _log_errors(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if " ERROR " in line or line.startswith("Traceback"):
                    found.append(f"{path.name}: {line[:200]}")
    return found


async def run_load(
    *,
    runs: int,
    tenants: int,
    workers: int,
    client: Client,
    db: Database,
    worker_env: dict[str, str],
    logs: Path,
    admin_dsn: str,
    concurrency: int = 100,
) -> LoadReport:
    report = LoadReport(runs=runs, tenants=tenants, workers=workers)
    started_at = time.monotonic()
    names = [f"ld-{uuid.uuid4().hex[:8]}" for _ in range(tenants)]
    plan: list[tuple[str, str]] = []  # (tenant, invoice), one per run
    for t, tenant in enumerate(names):
        await seed(
            db,
            tenant,
            template="acme",
            actor="load",
            keys=session_vault().keys,
            admin_dsn=admin_dsn,
        )
        await enroll_members(
            admin_dsn, tenant, template="acme", actor="load", folder=Settings().member_key_folder
        )
        mine = [f"LD-{n:05d}" for n in range(runs) if n % tenants == t]
        await _books(db, tenant, mine)
        plan += [(tenant, i) for i in mine]

    procs = [
        WorkerProcess(env=worker_env, log=logs / f"worker-{n}.log").start() for n in range(workers)
    ]
    try:
        gate = asyncio.Semaphore(concurrency)

        async def begin(tenant: str, invoice: str) -> WorkflowHandle[Any, Any]:
            async with gate:
                run = AgentRunInput(
                    tenant_id=tenant, agent="payables", trigger=f"load-{invoice}", focus=[invoice]
                )
                handle = await start_run(client, run, task_queue=QUEUE)
                await _waiting(handle, timeout=600)
                return handle

        handles = await asyncio.gather(*(begin(t, i) for t, i in plan))
        report.worker_mib = max(p.memory_mib() for p in procs)

        sent: dict[str, datetime] = {}

        async def decide(n: int, handle: WorkflowHandle[Any, Any]) -> None:
            decision = await signed(
                handle, Decision(proposal_id="p1", approver="maya", outcome="approve")
            )
            async with gate:
                sent[handle.id] = datetime.now(UTC)
                try:
                    if n % 2:
                        await handle.signal(AgentLoop.decide_signal, decision)
                    else:
                        await handle.execute_update(AgentLoop.decide, decision)
                    report.accepted += 1
                except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
                    # The caller stopped waiting (a busy worker): the books, below, say
                    # whether the decision was recorded and acted on all the same.
                    report.timed_out += 1
                    report.errors.append(f"decision {handle.id}: {exc}")
                except Exception as exc:
                    report.refused += 1
                    report.errors.append(f"decision {handle.id}: {exc}")

        await asyncio.gather(*(decide(n, h) for n, h in enumerate(handles)))

        async def finished(handle: WorkflowHandle[Any, Any]) -> bool:
            async with gate:
                try:
                    result = await asyncio.wait_for(handle.result(), timeout=600)
                except Exception as exc:
                    report.errors.append(f"run {handle.id}: {exc}")
                    return False
                return all(p.status == "executed" for p in result.proposals)

        done = await asyncio.gather(*(finished(h) for h in handles))
        report.completed = sum(done)
        report.worker_mib = max(report.worker_mib, *(p.memory_mib() for p in procs))
    finally:
        for p in procs:
            p.stop()

    for tenant in names:
        async with db.tenant(tenant) as conn:
            paid = await conn.fetch(
                "SELECT invoice_id, count(*) AS n FROM charter.payments WHERE tenant_id = $1 "
                "AND invoice_id LIKE 'LD-%' GROUP BY invoice_id",
                tenant,
            )
            executed = await conn.fetch(
                "SELECT workflow_id, executed_at FROM charter.actions WHERE tenant_id = $1",
                tenant,
            )
        counts = {r["invoice_id"]: r["n"] for r in paid}
        mine = [i for t, i in plan if t == tenant]
        report.lost += sum(1 for i in mine if counts.get(i, 0) == 0)
        report.doubled += sum(1 for n in counts.values() if n > 1)
        for row in executed:
            if row["workflow_id"] in sent:
                report.latencies.append(
                    (row["executed_at"] - sent[row["workflow_id"]]).total_seconds()
                )
    report.errors += _log_errors([p.log for p in procs])
    report.seconds = time.monotonic() - started_at
    return report


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="charter-load-"))
    pg = Postgres()
    temporal = Temporal(state)
    temporal.start()
    try:
        async with migrated_database(pg.admin_dsn, prefix="charter_load") as dsn:
            db = await Database.connect(app_dsn(dsn))
            client = await Client.connect(
                temporal.address, plugins=[CharterPlugin.from_settings(Settings())]
            )
            env = worker_env(dsn, temporal.address, QUEUE, state / "worker")
            try:
                report = await run_load(
                    runs=args.runs,
                    tenants=args.tenants,
                    workers=args.workers,
                    client=client,
                    db=db,
                    worker_env=env,
                    logs=state,
                    admin_dsn=dsn,
                )
            finally:
                await db.close()
        print(report.table())
        for line in report.errors[:20]:
            print("  ", line)
    finally:
        temporal.stop()
        pg.close()


if __name__ == "__main__":
    from tests.support.payload_keys import TEST_PAYLOAD_KEYS

    os.environ.setdefault("CHARTER_PAYLOAD_KEYS", TEST_PAYLOAD_KEYS)
    if "CHARTER_KEK" not in os.environ:
        from charter.crypto.keyring import EnvKeyProvider

        os.environ["CHARTER_KEK"] = EnvKeyProvider.generate(1)
    asyncio.run(main())
