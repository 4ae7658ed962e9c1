"""Serve the inbox with uvicorn until asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette

from charter.web.config import WebConfigError, WebSettings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handlers: the entry point's (SIGINT, SIGTERM:
    set the stop event) decide when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server(app: Starlette, settings: WebSettings) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # Charter's own logging is configured by the entry point; uvicorn's access log would
        # write every path (exception ids, enrolment tokens) to the log.
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )
    return _Server(config)


def listening(settings: WebSettings) -> socket.socket:
    """The listening socket, bound here so a port in use is one clear line."""
    try:
        return socket.create_server((settings.host, settings.port), reuse_port=False)
    except OSError as exc:
        raise WebConfigError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from None


async def serve(app: Starlette, settings: WebSettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set."""
    web = server(app, settings)
    sock = listening(settings)
    task = asyncio.create_task(web.serve(sockets=[sock]))
    waiting = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        web.should_exit = True
        waiting.cancel()
        await task
