"""`charter codec-server`: decrypt payloads for the Temporal UI, for those allowed to read them."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl

from charter.config.settings import ConfigurationError, Settings
from charter.crypto.codec import default_payload_keyring
from charter.temporal import codec_server
from charter.temporal.access_tokens import AccessTokens
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
        help="an allowed browser origin, e.g. https://cloud.temporal.io (repeatable; default "
        "CHARTER_CODEC_UI_ORIGINS)",
    )


def _origins(args: argparse.Namespace, settings: Settings) -> list[str]:
    if args.ui_origin:
        return list(args.ui_origin)
    if settings.codec_ui_origins:
        return [o.strip() for o in settings.codec_ui_origins.split(",") if o.strip()]
    return codec_server.ui_origins(args.ui_port or settings.temporal_ui_port)


def access_for(settings: Settings) -> codec_server.Access:
    """The codec token, the Cloud UI's access tokens (with CHARTER_CODEC_JWKS_URL), or both."""
    tokens = None
    if settings.codec_jwks_url:
        tokens = AccessTokens(
            settings.codec_jwks_url, settings.codec_jwt_issuer, settings.codec_jwt_audience
        )
    configured = settings.codec_server_token is not None or settings.development
    token = codec_server.codec_token(settings) if configured or tokens is None else None
    return codec_server.Access(token=token, access_tokens=tokens)


def _tls(settings: Settings) -> ssl.SSLContext | None:
    if (settings.codec_tls_cert is None) != (settings.codec_tls_key is None):
        raise ConfigurationError("set both CHARTER_CODEC_TLS_CERT and CHARTER_CODEC_TLS_KEY")
    if settings.codec_tls_cert is None or settings.codec_tls_key is None:
        if settings.codec_jwks_url:
            raise ConfigurationError(
                "Temporal Cloud mode (CHARTER_CODEC_JWKS_URL) is served over HTTPS only: "
                "set CHARTER_CODEC_TLS_CERT and CHARTER_CODEC_TLS_KEY"
            )
        return None
    return codec_server.tls_context(settings.codec_tls_cert, settings.codec_tls_key)


async def cmd_codec_server(args: argparse.Namespace) -> int:
    """serve the payload codec to the Temporal UI (authorised callers, CORS for the UI only)

    Runs Temporal's remote-codec endpoints (POST /decode, /encode) with Charter's payload
    keys. Requests need the codec token (Authorization: Bearer <token>, or the cookie its
    sign-in page /login sets), or in Temporal Cloud mode (CHARTER_CODEC_JWKS_URL, over HTTPS
    with CHARTER_CODEC_TLS_CERT/KEY) the Cloud UI's access token. Browsers are allowed only
    from the UI's origins. The token is CHARTER_CODEC_SERVER_TOKEN (or its _FILE).
    """
    settings = Settings()
    port = args.port or settings.codec_server_port
    origins = _origins(args, settings)
    keyring = default_payload_keyring(settings)
    tls = _tls(settings)
    access = access_for(settings)
    runner, bound = await codec_server.start(keyring, access, origins, args.host, port, tls)
    scheme = "https" if tls else "http"
    modes = (["codec token"] if access.token else []) + (
        ["Temporal Cloud access tokens"] if access.access_tokens else []
    )
    console.print(
        f"codec server on {scheme}://{args.host}:{bound} for {', '.join(origins)}; "
        f"accepts {' and '.join(modes)}"
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
