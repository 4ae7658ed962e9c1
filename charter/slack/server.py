"""Run the bolt app: over HTTP (an aiohttp server of its own, or mounted in yours) or over
Socket Mode, as configured. Both transports serve the very same `AsyncApp`."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from charter.slack.config import SlackSettings

log = logging.getLogger(__name__)


def add_routes(web_app: web.Application, bolt: AsyncApp, path: str = "/slack/events") -> None:
    """Mount the Slack endpoint (events and interactivity) in an aiohttp application."""

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app.router.add_post(path, slack_events)
    web_app.router.add_get("/healthz", healthz)


def http_app(bolt: AsyncApp, path: str = "/slack/events") -> web.Application:
    # Slack's interactive payloads are small; refuse anything large before parsing it.
    app = web.Application(client_max_size=256 * 1024)
    add_routes(app, bolt, path)
    return app


def socket_mode_handler(bolt: AsyncApp, settings: SlackSettings) -> AsyncSocketModeHandler:
    if settings.app_token is None:
        raise ValueError("Socket Mode needs an app-level token")
    return AsyncSocketModeHandler(bolt, app_token=settings.app_token.get_secret_value())


async def serve(bolt: AsyncApp, settings: SlackSettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, over the configured transport."""
    if settings.mode == "socket":
        # The handler's client opens an aiohttp session as it is built: close it however
        # connecting or serving ends, a failed connect included.
        handler = socket_mode_handler(bolt, settings)
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack Socket Mode connected")
            await stop.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
        return
    runner = web.AppRunner(http_app(bolt, settings.path))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info("Slack endpoint on http://%s:%s%s", settings.host, settings.port, settings.path)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
