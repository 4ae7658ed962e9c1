"""Serving a stand-in on a free loopback port for the length of a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from aiohttp import web


class StandIn(Protocol):
    base_url: str

    def app(self) -> web.Application: ...


S = TypeVar("S", bound=StandIn)


async def serve(app: web.Application, **runner: float) -> tuple[web.AppRunner, int]:
    """Serve `app` on a free loopback port; return its runner (to clean up) and the port."""
    app_runner = web.AppRunner(app, **runner)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return app_runner, int(port)


@asynccontextmanager
async def serving(standin: S) -> AsyncIterator[S]:
    """Serve on a free loopback port; `standin.base_url` says where."""
    runner, port = await serve(standin.app(), shutdown_timeout=0.5)
    standin.base_url = f"http://127.0.0.1:{port}"
    try:
        yield standin
    finally:
        await runner.cleanup()
