"""`charter codec-server`: decrypt payloads for the Temporal UI, for holders of the token."""

from __future__ import annotations

import argparse
import asyncio
import signal

from charter.config.settings import Settings
from charter.crypto.codec import default_payload_keyring
from charter.temporal import codec_server
from charter_cli._common import console
from charter_cli._registration import Subcommands, command


def register(sub: Subcommands) -> None:
    server = command(sub, "codec-server", cmd_codec_server)
    server.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    server.add_argument("--port", type=int, default=None, help="default: CHARTER_CODEC_SERVER_PORT")
    server.add_argument(
        "--ui-port", type=int, default=None, help="the Temporal UI's port (allowed CORS origin)"
    )
    server.add_argument(
        "--ui-origin",
        action="append",
        default=[],
        help="an allowed browser origin, e.g. https://temporal.example.com (repeatable)",
    )


async def cmd_codec_server(args: argparse.Namespace) -> int:
    """serve the payload codec to the Temporal UI (token-protected, CORS for the UI only)

    Runs Temporal's remote-codec endpoints (POST /decode, /encode) with Charter's payload
    keys. Requests need the token (Authorization: Bearer <token>, or the cookie set by POST
    /login); browsers are allowed only from the UI's origin. The token is
    CHARTER_CODEC_SERVER_TOKEN or the file codec-token in the state dir.
    """
    settings = Settings()
    port = args.port or settings.codec_server_port
    origins = args.ui_origin or codec_server.ui_origins(args.ui_port or settings.temporal_ui_port)
    token = codec_server.codec_token(settings)
    runner, bound = await codec_server.start(
        default_payload_keyring(settings), token, origins, args.host, port
    )
    where = (
        "CHARTER_CODEC_SERVER_TOKEN"
        if settings.codec_server_token
        else str(settings.state_dir / codec_server.TOKEN_FILE)
    )
    console.print(
        f"codec server on http://{args.host}:{bound} for {', '.join(origins)}; token in {where}"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
