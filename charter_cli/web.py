"""`charter web`: serve the founders' inbox (passkey sign-in and passkey-signed decisions)."""

from __future__ import annotations

import argparse

from charter.web.app import build_app
from charter.web.config import WebConfigError, WebSettings
from charter.web.server import serve
from charter_cli._common import as_cli_errors, console, session, stack_for, stop_on_signals
from charter_cli._registration import Subcommands, command


def register(sub: Subcommands) -> None:
    web = sub.add_parser(
        "web",
        help="serve the web inbox: open exceptions, decided with a passkey",
        description="Serve the inbox on CHARTER_WEB_HOST:CHARTER_WEB_PORT for founders who "
        "open CHARTER_WEB_ORIGIN (see README, 'Deciding in the web inbox').",
    )
    web.set_defaults(func=cmd_serve)
    web_sub = web.add_subparsers(dest="web_command", metavar="ACTION")
    command(web_sub, "serve", cmd_serve)


async def cmd_serve(args: argparse.Namespace) -> int:
    """serve the web inbox (the default)"""
    web = WebSettings()
    with as_cli_errors(WebConfigError):
        web.check()
    settings, stack = await stack_for(args)
    stop = stop_on_signals()
    async with session(settings, stack) as s:
        assert s.client is not None
        app = build_app(
            web,
            s.db,
            s.client,
            namespace=settings.temporal_namespace,
            temporal_ui_url=web.temporal_ui_url or settings.temporal_ui_url,
        )
        console.print(
            f"[green]web inbox[/] on http://{web.host}:{web.port} for {web.public_origin()}; "
            "Ctrl-C to stop"
        )
        with as_cli_errors(WebConfigError):
            await serve(app, web, stop)
    return 0
