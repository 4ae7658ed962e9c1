"""`python worker.py` as deployed: health endpoints, a run served, JSON logs, and a clean
exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
from temporalio.testing import WorkflowEnvironment

from charter.runtime.config import app_dsn
from charter.storage import Database
from tests.conftest import eventually
from tests.helpers import start
from tests.production.processes import clean_env, free_port, worker_py


async def _get(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def test_worker_serves_reports_ready_and_stops_on_sigterm(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    port, queue = free_port(), f"prod-{tenant}"
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
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert f"worker polling task queue {queue}" in messages
    assert any(m.startswith("stopping: no new tasks") for m in messages)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
