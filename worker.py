"""The Charter worker: runs `AgentLoop`, `AuditCheckpoint` and their activities on the
`charter` task queue.

A production process: it connects to the Temporal and PostgreSQL it is given and nothing
else. It never starts an embedded server or applies migrations (`charter migrate` does, with
the administrator DSN); it refuses, in one line and with exit code 2, to start without a
Temporal address, without a database, or on a database that is not migrated.

    TEMPORAL_ADDRESS=temporal:7233 CHARTER_APP_DATABASE_URL=postgresql://charter_app:…@db/charter \\
        python worker.py

Temporal is configured the standard way (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`, profiles). The database is the application role's DSN
(`CHARTER_APP_DATABASE_URL`), or `DATABASE_URL` with its user replaced by `charter_app`
(password `CHARTER_APP_DB_PASSWORD`): the worker never connects as the administrator.
It refuses, too, without configured payload keys and key-encryption key (`CHARTER_PAYLOAD_KEYS`,
`CHARTER_KEK` or Vault; each also as a `_FILE`), and when its keys do not open the canary the
other processes wrote (`charter.storage.key_canaries`): replicas never encrypt differently.
SIGTERM stops polling and lets running activities finish for `CHARTER_SHUTDOWN_GRACE`.
Audit checkpoints are signed with `CHARTER_AUDIT_SIGNING_KEY` (or the state directory's key
file); an `s3://` sink uses the standard AWS configuration (`AWS_*`).
`CHARTER_HEALTH_PORT` serves `/healthz` and `/readyz`; `CHARTER_METRICS_ADDRESS` the Prometheus
metrics (open exceptions recounted every `CHARTER_OPEN_EXCEPTIONS_INTERVAL`); the `OTEL_*` variables send traces to a collector (`charter.runtime.telemetry`).
Its capacity is configured together and checked before it connects: the pool
(`CHARTER_DB_POOL_SIZE`), its concurrent activities (`CHARTER_MAX_CONCURRENT_ACTIVITIES`) and the
providers' bulkheads (`CHARTER_PROVIDER_*`, `CHARTER_BREAKER_*`); a combination that can starve
the pool is refused in one line (`charter.connectors.capacity`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio.client import Client

from charter.config.settings import ConfigurationError, Settings, app_dsn
from charter.connectors.capacity import capacity
from charter.crypto.codec import default_payload_keyring
from charter.crypto.providers import default_key_provider, require_configured_keys
from charter.runtime import health, logs, telemetry
from charter.runtime.failures import refuse_in_one_line
from charter.runtime.open_exceptions import OpenExceptionsGauge
from charter.runtime.process import exit_now
from charter.storage import Database
from charter.storage.key_canaries import check_key_canaries
from charter.temporal.connection import configured_address, connect

# What only a serving worker needs (the activities, the workflows, the model's and Slack's
# SDKs) is imported when it is about to serve: a misconfigured worker refuses in half the
# time, before importing every SDK.
if TYPE_CHECKING:
    from temporalio.worker import Worker

    from activities import Deps
    from charter.reasoners import Reasoner, RetryBudget
    from charter.runtime.bulkheads import Bulkheads

log = logging.getLogger("charter.worker")

#: A parked workflow costs memory while cached (bench/agent_loop.py measured ~200 KiB of RSS for
#: a parked AgentLoop on a 2-core dev machine, against ~120 KiB for a bare one); bound the cache so
#: thousands of runs waiting on humans do not grow the worker without limit. 500 keeps a full
#: cache near 120 MiB; an evicted run is rebuilt from history when its decision arrives.
MAX_CACHED_WORKFLOWS = 500


def build_worker(
    client: Client,
    deps: Deps,
    task_queue: str = "charter",
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS,
    graceful_shutdown: timedelta = timedelta(seconds=30),
    max_concurrent_activities: int = 100,
) -> Worker:
    """A worker with every Charter workflow and activity. The plugin comes with the client.

    `max_cached_workflows` is a parameter only for bench/agent_loop.py, which shows the bound
    at work with a smaller cache. Not 0: a run's start, verdicts and end are local
    activities, which a worker without a cache cancels at every eviction (after every
    workflow task) and runs again on replay."""
    if max_cached_workflows < 1:
        raise ValueError("max_cached_workflows must be at least 1: local activities need a cache")
    with warnings.catch_warnings():
        # Every Charter activity is async: the thread pool below runs none of them, so its
        # size says nothing about how many activities run at once.
        warnings.filterwarnings("ignore", message="Worker max_concurrent_activities is")
        return _worker(
            client,
            deps,
            task_queue,
            max_cached_workflows,
            graceful_shutdown,
            max_concurrent_activities,
        )


def _worker(
    client: Client,
    deps: Deps,
    task_queue: str,
    max_cached_workflows: int,
    graceful_shutdown: timedelta,
    max_concurrent_activities: int,
) -> Worker:
    from temporalio.worker import Worker

    from activities import all_activities
    from workflows import AgentLoop, AuditCheckpoint

    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentLoop, AuditCheckpoint],
        activities=all_activities(deps),
        activity_executor=ThreadPoolExecutor(4),
        max_cached_workflows=max_cached_workflows,
        graceful_shutdown_timeout=graceful_shutdown,
        max_concurrent_activities=max_concurrent_activities,
    )


def default_reasoner(settings: Settings) -> Reasoner:
    """Claude when `ANTHROPIC_API_KEY` is set; the deterministic offline reasoner otherwise."""
    from charter.reasoners import OfflineReasoner
    from charter.reasoners.claude import ClaudeReasoner

    if settings.anthropic_api_key is None:
        return OfflineReasoner()
    return ClaudeReasoner(
        api_key=settings.anthropic_api_key,
        model=settings.model,
        max_tokens=settings.max_tokens,
        timeout=settings.reasoner_timeout,
        base_url=settings.anthropic_base_url,
    )


def reasoner_budget(settings: Settings) -> RetryBudget:
    """One budget for every way a model can fail; an attempt is two requests at most (one
    corrective), cut off before the workflow's five-minute start-to-close timeout."""
    from charter.reasoners import RetryBudget

    return RetryBudget(
        attempts=settings.reasoner_max_attempts,
        time=settings.reasoner_retry_budget,
        request=settings.reasoner_timeout,
        attempt=2 * settings.reasoner_timeout + timedelta(seconds=10),
    )


def production_targets(settings: Settings) -> tuple[str, str]:
    """The Temporal address and the application DSN a production worker uses; a
    ConfigurationError names whichever is missing."""
    address = configured_address(settings)
    if address is None:
        raise ConfigurationError(
            "TEMPORAL_ADDRESS is not set (nor a Temporal profile with an address): the worker "
            "starts no server of its own; for a local stack run `charter up`"
        )
    dsn = settings.app_database_url or (
        app_dsn(settings.database_url, settings.app_db_password) if settings.database_url else None
    )
    if dsn is None:
        raise ConfigurationError(
            "CHARTER_APP_DATABASE_URL (or DATABASE_URL) is not set: the worker starts no "
            "database of its own; for a local stack run `charter up`"
        )
    return address, dsn


async def require_migrated(db: Database) -> None:
    pending = await db.pending_migrations()
    if pending:
        raise ConfigurationError(
            f"the database lacks migration(s) {', '.join(pending)}: run `charter migrate` "
            "with the administrator's DATABASE_URL first"
        )


class Draining(RuntimeError):
    """The worker was told to stop: it finishes what it runs and takes nothing new."""


def readiness_checks(
    client: Client, db: Database, stopping: asyncio.Event | None = None
) -> dict[str, health.Check]:
    """Temporal serving, the database migrated, and (once `stopping` is set) not draining:
    an orchestrator stops routing to a worker that is on its way out."""

    async def accepting() -> None:
        if stopping is not None and stopping.is_set():
            raise Draining("draining: finishing running activities before exit")

    async def temporal() -> None:
        if not await client.service_client.check_health():
            raise RuntimeError("Temporal reports not serving")

    async def postgres() -> None:
        await require_migrated(db)  # a query, so it also proves the pool can reach the server

    return {"accepting": accepting, "temporal": temporal, "postgres": postgres}


def production_deps(settings: Settings, db: Database, bulkheads: Bulkheads | None = None) -> Deps:
    """What the activities get from this worker's configuration."""
    from activities import Deps
    from charter.crypto.anchors import configured_anchors
    from charter.services.audit_verification import SigningKeySource
    from charter.slack import SlackSettings, notifier_for
    from charter.storage.credential_vault import CredentialVault

    notifier = notifier_for(
        SlackSettings(),
        db,
        ui_url=settings.temporal_ui_url,
        namespace=settings.temporal_namespace,
    )
    return Deps(
        db=db,
        reasoner=default_reasoner(settings),
        reasoner_budget=reasoner_budget(settings),
        notifier=notifier,
        # The KEK provider this worker's configuration names, resolved on first use.
        credentials=CredentialVault(settings=settings),
        max_observation_age=settings.max_observation_age,
        max_send_backs=settings.max_send_backs,
        # The worker signs with the key it is given and never makes one of its own: a key
        # created in a container's state directory would vanish with the container.
        audit_signing=SigningKeySource(settings.audit_signing_key, settings.audit_signing_key_file),
        bulkheads=bulkheads or capacity(settings).bulkheads(),
        trust_anchors=configured_anchors(settings),
    )


def count_open_exceptions(settings: Settings, db: Database) -> asyncio.Task[None] | None:
    """The open-exceptions gauge, recounted in the background, when metrics are served."""
    if not settings.metrics_address:
        return None
    gauge = OpenExceptionsGauge(telemetry.metrics_runtime(settings.metrics_address).metric_meter)
    return asyncio.create_task(
        gauge.publish(db, settings.open_exceptions_interval), name="open-exceptions"
    )


def watch_duplicate_payments(settings: Settings, deps: Deps) -> asyncio.Task[None]:
    """Bills paid twice at the provider, looked for in the background: audited, told, and
    counted on the metrics endpoint when it is served."""
    from charter.services.duplicate_watch import DuplicatePaymentsWatch

    meter = (
        telemetry.metrics_runtime(settings.metrics_address).metric_meter
        if settings.metrics_address
        else None
    )
    watching = DuplicatePaymentsWatch(meter).watch(
        deps.db, deps.credentials.scoped("read"), deps.notifier, settings.duplicate_watch_interval
    )
    return asyncio.create_task(watching, name="duplicate-payments")


async def run_worker(
    settings: Settings, temporal_address: str, app_dsn: str, stop: asyncio.Event | None = None
) -> None:
    """Serve until `stop` is set; then stop polling and let running activities finish
    (`/readyz` answers 503 from then on)."""
    # Before anything is connected: a combination that can starve is refused in one line.
    sized = capacity(settings)
    stop = stop or asyncio.Event()
    client = await connect(settings, temporal_address)
    db = await Database.connect(app_dsn, max_size=sized.pool_size)
    health_server = None
    counting: asyncio.Task[None] | None = None
    watching: asyncio.Task[None] | None = None
    try:
        await require_migrated(db)
        await check_key_canaries(
            db, default_payload_keyring(settings), default_key_provider(settings)
        )
        deps = production_deps(settings, db, sized.bulkheads())
        worker = build_worker(
            client,
            deps,
            settings.task_queue,
            graceful_shutdown=settings.shutdown_grace,
            max_concurrent_activities=sized.max_concurrent_activities,
        )
        counting = count_open_exceptions(settings, db)
        watching = watch_duplicate_payments(settings, deps)
        if settings.health_port is not None:
            health_server, port = await health.serve(
                readiness_checks(client, db, stop), settings.health_host, settings.health_port
            )
            log.info("health endpoints on %s:%d", settings.health_host, port)
        async with worker:
            log.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
            log.info("stopping: no new tasks; running activities get %s", settings.shutdown_grace)
    finally:
        for task in (counting, watching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if health_server is not None:
            await health_server.cleanup()
        await db.close()


async def serve(settings: Settings) -> None:
    address, dsn = production_targets(settings)
    require_configured_keys(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(settings, address, dsn, stop)


def main() -> int:
    tracing = None
    try:
        settings = Settings()
        logs.configure(logging.INFO, settings.log_format)
        tracing = telemetry.configure_tracing("charter-worker")
        asyncio.run(serve(settings))
    except Exception as exc:
        return refuse_in_one_line(exc, "charter worker")
    finally:
        if tracing is not None:
            tracing.shutdown()  # flush the spans still batched
    return 0


if __name__ == "__main__":
    exit_now(main())
