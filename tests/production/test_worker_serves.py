"""`python worker.py` as deployed: health endpoints, a run served, JSON logs, and a clean
exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from temporalio.testing import WorkflowEnvironment

from charter.config.settings import app_dsn
from charter.runtime import open_exceptions
from charter.runtime.http_server import serve_app
from charter.storage import Database
from schemas import Decision
from tests.support.polling import eventually
from tests.support.processes import clean_env, free_port, stopped, worker_py
from tests.support.running import start, until_stage
from tests.support.signing import signed
from workflows import AgentLoop


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return await response.text()


def _value(metrics: str, name: str, **labels: str) -> float:
    """The sample of `name` whose labels include `labels` (0 when there is none)."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in metrics.splitlines():
        series, _, sample = line.rpartition(" ")
        if series.split("{")[0] == name and all(w in series for w in wanted):
            return float(sample)
    return 0.0


async def _value_when(
    url: str, name: str, accept: Callable[[float], bool], **labels: str
) -> tuple[float] | None:
    """`(value,)` once the sample passes `accept` (a tuple, so that 0 counts as found)."""
    value = _value(await _scrape(url), name, **labels)
    return (value,) if accept(value) else None


async def _get(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


class Collector:
    """Just enough of an OpenTelemetry collector: OTLP/HTTP trace exports, kept in memory."""

    def __init__(self) -> None:
        self.span_names: list[str] = []
        self.services: set[str] = set()

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.services.add(attribute.value.string_value)
            for scope in resource_spans.scope_spans:
                self.span_names += [span.name for span in scope.spans]
        return web.Response(body=b"", content_type="application/x-protobuf")


async def test_worker_serves_reports_ready_and_stops_on_sigterm(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    port, metrics_port, queue = free_port(), free_port(), f"prod-{tenant}"
    collector = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.traces)
    runner, collector_port = await serve_app(app, "127.0.0.1", 0)
    child = clean_env(
        tmp_path,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_APP_DATABASE_URL=app_dsn(admin_dsn),
        CHARTER_TASK_QUEUE=queue,
        CHARTER_HEALTH_PORT=str(port),
        CHARTER_HEALTH_HOST="127.0.0.1",
        CHARTER_LOG_FORMAT="json",
        CHARTER_SHUTDOWN_GRACE="PT5S",
        CHARTER_STATE_DIR=str(tmp_path / "state"),
        CHARTER_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
        CHARTER_OPEN_EXCEPTIONS_INTERVAL="PT0.5S",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector_port}",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        worker_py(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child,
        cwd=tmp_path,
    )
    try:

        async def ready() -> dict[str, object] | None:
            try:
                status, body = await _get(f"http://127.0.0.1:{port}/readyz")
            except aiohttp.ClientConnectionError:
                return None
            return body if status == 200 else None

        body = await eventually(ready, timeout=120)
        assert body == {
            "status": "ready",
            "checks": {"accepting": "ok", "temporal": "ok", "postgres": "ok"},
        }
        assert await _get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})

        handle = await start(env.client, tenant, "payables", task_queue=queue, focus=["INV-1041"])
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.proposals[0].status == "executed"

        # Two runs about one invoice escalate and wait: the gauge counts both exceptions; both
        # are approved (each decision closes its exception and is timed) and the books pay
        # once: the payment's key is the bill's, so the second act finds it made.
        # Other tests' tenants may hold open exceptions of their own: the gauge must reach
        # theirs plus these two, then come back.
        before = (await open_exceptions.count(db)).get("payables", 0)
        escalated = [
            await start(env.client, tenant, "payables", task_queue=queue, focus=["INV-1043"])
            for _ in range(2)
        ]
        for handle in escalated:
            await until_stage(handle, "awaiting_decision")
        scrape = f"http://127.0.0.1:{metrics_port}/metrics"
        (waiting,) = await eventually(
            lambda: _value_when(
                scrape, "charter_open_exceptions", lambda v: v == before + 2, agent="payables"
            )
        )
        statuses = []
        for handle in escalated:
            approve = Decision(proposal_id="p1", approver="maya", outcome="approve", reason="ok")
            await handle.execute_update(AgentLoop.decide, await signed(handle, approve))
            statuses.append((await asyncio.wait_for(handle.result(), 60)).proposals[0].status)
        assert statuses == ["executed", "executed"]
        # Every tenant's open exceptions are counted; only these runs' closed meanwhile.
        await eventually(
            lambda: _value_when(
                scrape, "charter_open_exceptions", lambda v: v == waiting - 2, agent="payables"
            )
        )

        # One scrape target: the Temporal runtime's series and Charter's own.
        metrics = await _scrape(scrape)
        assert "temporal_activity_execution_latency" in metrics
        # Counters by Prometheus' conventions, every series under Charter's service name.
        assert "temporal_activity_poll_no_task_total" in metrics or (
            "temporal_request_total" in metrics
        ), metrics
        assert 'service_name="temporal-core-sdk"' not in metrics
        assert 'service_name="charter-worker"' in metrics
        assert _value(metrics, "charter_runs_total", outcome="executed") == 3, metrics
        # The watch for bills paid twice looked at once: none (the demo books pay once).
        assert _value(metrics, "charter_duplicate_payments") == 0, metrics
        assert _value(metrics, "charter_proposals_total", verdict="execute") == 1, metrics
        assert _value(metrics, "charter_proposals_total", verdict="escalate") == 2, metrics
        assert _value(metrics, "charter_time_to_decision_count", outcome="approved") == 2
        assert 0 < _value(metrics, "charter_time_to_decision_sum", outcome="approved") < 240
        assert _value(metrics, "charter_time_to_decision_bucket", outcome="approved", le="60") == 2
        # Charter's labels are enumerations and slugs: no tenant, no id, no business data (the
        # SDK's own `task_queue` label carries this test's queue name, which names the tenant).
        for line in metrics.splitlines():
            if line.startswith("charter_"):
                line = line.replace(f'task_queue="{queue}"', "")
                assert tenant not in line and "INV-" not in line and "2300" not in line, line
        charter_series = [line for line in metrics.splitlines() if line.startswith("charter_")]
        assert any(
            'stage="act"' in line and 'outcome="executed"' in line for line in charter_series
        ), metrics
        assert any('stage="read"' in line for line in charter_series), metrics
    finally:
        _, err = await stopped(proc)
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert f"worker polling task queue {queue}" in messages
    assert any(m.startswith("stopping: no new tasks") for m in messages)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    # The spans reached the collector named by OTEL_EXPORTER_OTLP_ENDPOINT (flushed on exit).
    assert collector.services == {"charter-worker"}
    assert {"charter.read", "charter.reason", "charter.gate", "charter.act"} <= set(
        collector.span_names
    )
    assert "RunActivity:observe" in collector.span_names
    # The database statements too (named by their verb); and no span of the exporter's own
    # requests, which would feed back into every export.
    assert {"SELECT", "INSERT"} <= set(collector.span_names)
    assert "POST" not in collector.span_names
