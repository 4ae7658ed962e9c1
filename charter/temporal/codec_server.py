"""The codec server: lets the Temporal UI show decrypted payloads to someone holding its token.

Speaks Temporal's remote-codec protocol (`POST /decode`, `POST /encode`, a JSON `Payloads`
message in and out). Every request must carry the token, as `Authorization: Bearer <token>`
or as the cookie set by `POST /login`; browsers may call it only from the Temporal UI's
origin (CORS, with credentials, for that origin alone — any other origin gets 403).
A payload that fails to decode is an error, never passed through.

The token lives in `<state dir>/codec-token` (mode 0600, generated on first run) unless
`CHARTER_CODEC_SERVER_TOKEN` is set.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Collection
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from charter.config.settings import Settings
from charter.crypto.codec import EncryptionCodec, PayloadKeyring
from charter.crypto.errors import CryptoError
from charter.runtime.http_server import serve_app

log = logging.getLogger(__name__)

TOKEN_FILE = "codec-token"
COOKIE = "charter_codec"
_ALLOW_HEADERS = "Authorization, Content-Type, X-Namespace"
_MAX_BODY = 8 * 1024 * 1024

#: What anyone may call: the health check, and the form that exchanges the token for a cookie.
_OPEN_PATHS = ("/healthz", "/login")
_LOGIN_FORM = (
    '<form method="post"><label>Codec token <input name="token" '
    'type="password" autofocus></label> <button>Sign in</button></form>'
)


def codec_token(settings: Settings) -> str:
    """The configured token, else the one in the state directory (created on first use)."""
    if settings.codec_server_token is not None:
        return settings.codec_server_token.get_secret_value()
    path = settings.state_dir / TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        except FileExistsError:
            pass
    return Path(path).read_text().strip()


def ui_origins(ui_port: int) -> list[str]:
    return [f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _offered_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")


def _is_token(offered: str, token: str) -> bool:
    return bool(offered) and hmac.compare_digest(offered.encode(), token.encode())


def _cors(response: web.StreamResponse, origin: str | None) -> web.StreamResponse:
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response


def _preflight(origin: str | None) -> web.StreamResponse:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = _ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return _cors(response, origin)


def _guard(token: str, origins: frozenset[str]) -> Middleware:
    """Every request: from an allowed origin (or none), and with the token unless it is the
    health check or the login form; CORS headers on whatever is answered to a browser."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in origins:
            return _error(403, "origin not allowed")
        if request.method == "OPTIONS":
            return _preflight(origin)
        if request.path not in _OPEN_PATHS and not _is_token(_offered_token(request), token):
            return _cors(_error(401, "missing or wrong codec token"), origin)
        return _cors(await handler(request), origin)

    return guard


def _transform(codec: EncryptionCodec, *, decode: bool) -> Handler:
    """`POST /decode` or `POST /encode`: a JSON `Payloads` message in, the same out."""

    async def transform(request: web.Request) -> web.StreamResponse:
        try:
            payloads = json_format.Parse(await request.text(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError):
            return _error(400, "body is not a JSON Payloads message")
        try:
            out = await (codec.decode if decode else codec.encode)(list(payloads.payloads))
        except CryptoError as exc:
            log.warning("codec server refused a payload: %s", exc)
            return _error(400, f"payload failed to {'decode' if decode else 'encode'}")
        body = json_format.MessageToJson(Payloads(payloads=out))
        return web.Response(text=body, content_type="application/json")

    return transform


async def _healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


def _login(token: str) -> Handler:
    """Exchange the token for an HttpOnly cookie, for a UI set to send credentials."""

    async def login(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return web.Response(text=_LOGIN_FORM, content_type="text/html")
        form = await request.post()
        if not _is_token(str(form.get("token", "")), token):
            return _error(401, "wrong codec token")
        response = web.Response(text="signed in: the Temporal UI can now decode payloads")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=12 * 3600)
        return response

    return login


def create_app(
    keyring: PayloadKeyring, token: str, allowed_origins: Collection[str]
) -> web.Application:
    if len(token) < 16:
        raise ValueError("the codec server token must be at least 16 characters")
    codec = EncryptionCodec(keyring)
    app = web.Application(
        middlewares=[_guard(token, frozenset(allowed_origins))], client_max_size=_MAX_BODY
    )
    app.router.add_post("/decode", _transform(codec, decode=True))
    app.router.add_post("/encode", _transform(codec, decode=False))
    app.router.add_get("/healthz", _healthz)
    app.router.add_route("*", "/login", _login(token))
    # aiohttp answers OPTIONS only for registered routes; the guard handles the preflight.
    app.router.add_route("OPTIONS", "/{tail:.*}", _healthz)
    return app


async def start(
    keyring: PayloadKeyring,
    token: str,
    allowed_origins: Collection[str],
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[web.AppRunner, int]:
    """Start in the current event loop; return the runner (to clean up) and the bound port."""
    return await serve_app(create_app(keyring, token, allowed_origins), host, port)
