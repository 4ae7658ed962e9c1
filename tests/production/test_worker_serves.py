"""`python worker.py` as deployed: health endpoints, a run served, JSON logs, and a clean
exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from temporalio.testing import WorkflowEnvironment

from charter.runtime.config import app_dsn
from charter.runtime.http_server import serve_app
from charter.storage import Database
from tests.helpers import start
from tests.production.processes import clean_env, free_port, worker_py
from tests.support.polling import eventually


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

        body = await eventually(ready, timeout=60)
        assert body == {"status": "ready", "checks": {"temporal": "ok", "postgres": "ok"}}
        assert await _get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})

        handle = await start(env.client, tenant, "payables", task_queue=queue, focus=["INV-1041"])
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.proposals[0].status == "executed"

        # One scrape target: the Temporal runtime's series and Charter's own.
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response,
        ):
            assert response.status == 200
            metrics = await response.text()
        assert "temporal_activity_execution_latency" in metrics
        charter_series = [line for line in metrics.splitlines() if line.startswith("charter_")]
        assert any(
            'stage="act"' in line and 'outcome="executed"' in line for line in charter_series
        ), metrics
        assert any('stage="read"' in line for line in charter_series), metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
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
