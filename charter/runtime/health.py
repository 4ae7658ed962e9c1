"""`/healthz` and `/readyz` for orchestrators (Kubernetes probes, compose health checks).

`/healthz`: the process's event loop answers (restart it if not). `/readyz`: every check
passes, each named in the JSON body with its verdict (take it out of rotation if not). A
check is an async callable that returns None when healthy or raises with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from charter.runtime.http_server import serve_app

Check = Callable[[], Awaitable[None]]

#: A probe must answer quickly even when a dependency hangs.
CHECK_TIMEOUT = 5.0


async def _verdict(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:
        text = str(exc).strip()
        return (text.splitlines()[0] if text else type(exc).__name__)[:200]
    return "ok"


def app(checks: Mapping[str, Check]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        verdicts = dict(
            zip(checks, await asyncio.gather(*(_verdict(c) for c in checks.values())), strict=True)
        )
        ready = all(v == "ok" for v in verdicts.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": verdicts},
            status=200 if ready else 503,
        )

    application = web.Application()
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/readyz", readyz)
    return application


async def serve(checks: Mapping[str, Check], host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (call `cleanup()` to stop) and the bound port."""
    return await serve_app(app(checks), host, port)
