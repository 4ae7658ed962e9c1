"""`/readyz` of a worker: ready while it polls, 503 from the moment it is told to stop."""

from __future__ import annotations

import asyncio

import aiohttp
from temporalio.client import Client

from charter.runtime import health
from charter.storage import Database
from worker import readiness_checks


async def _readyz(port: int) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def test_not_ready_while_draining(client: Client, db: Database) -> None:
    stopping = asyncio.Event()
    runner, port = await health.serve(readiness_checks(client, db, stopping), "127.0.0.1", 0)
    try:
        status, body = await _readyz(port)
        assert status == 200 and body["status"] == "ready", body
        stopping.set()
        status, body = await _readyz(port)
        assert status == 503 and body["status"] == "not ready", body
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["accepting"].startswith("draining")
        assert checks["temporal"] == "ok" and checks["postgres"] == "ok"
    finally:
        await runner.cleanup()
