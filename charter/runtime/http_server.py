"""Serving a small aiohttp application inside an existing event loop."""

from __future__ import annotations

import ssl

from aiohttp import web


async def serve_app(
    application: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (call `cleanup()` to stop) and the bound port, which
    differs from `port` when that is 0 (any free port, as tests ask)."""
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
