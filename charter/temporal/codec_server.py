"""The codec server: lets the Temporal UI show decrypted payloads to those allowed to read them.

Speaks Temporal's remote-codec protocol (`POST /decode`, `POST /encode`, a JSON `Payloads`
message in and out). Every request must be authorised, by one of:

- the codec token, as `Authorization: Bearer <token>` or as the cookie its sign-in page
  (`/login`, served by this server) sets — for a self-hosted UI with "include cross-origin
  credentials" (`TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true`);
- in Temporal Cloud mode (`Authorizer` with a JWKS), the UI's access token, which the Cloud
  UI sends as `Authorization: Bearer <jwt>` when "pass the user access token" is on: its
  signature is checked against the JWKS, and its expiry, issuer and audience.

Browsers may call it only from the configured UI origins (CORS, with credentials, for those
origins alone — any other gets 403); the sign-in form posts from this server's own origin.
The cookie is `SameSite=None; Secure` over HTTPS (so a UI on another site sends it) and
`SameSite=Lax` over plain HTTP on one host (the embedded UI on another port is the same
site). A payload that fails to decode is an error, never passed through.

The token is `CHARTER_CODEC_SERVER_TOKEN` (or `_FILE`); only the development commands make
one, in `<state dir>/codec-token` (mode 0600).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import ssl
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from charter.config.settings import ConfigurationError, Settings
from charter.crypto.codec import EncryptionCodec, PayloadKeyring
from charter.crypto.errors import CryptoError
from charter.runtime.http_server import serve_app
from charter.temporal.access_tokens import AccessTokens

log = logging.getLogger(__name__)

TOKEN_FILE = "codec-token"
COOKIE = "charter_codec"
_DEFAULT_HEADERS = "Authorization, Content-Type, X-Namespace"
_MAX_BODY = 8 * 1024 * 1024
#: How long a sign-in lasts.
SESSION_SECONDS = 12 * 3600

#: What anyone may call: the health check, and the form that exchanges the token for a cookie.
_OPEN_PATHS = ("/healthz", "/login")
_LOGIN_FORM = (
    '<form method="post"><label>Codec token <input name="token" '
    'type="password" autofocus></label> <button>Sign in</button></form>'
)


def codec_token(settings: Settings) -> str:
    """The configured token; in development only, the one in the state directory (created on
    first use). Elsewhere an unset token is a ConfigurationError."""
    if settings.codec_server_token is not None:
        return settings.codec_server_token.get_secret_value()
    if not settings.development:
        raise ConfigurationError(
            "CHARTER_CODEC_SERVER_TOKEN (or CHARTER_CODEC_SERVER_TOKEN_FILE) is not set: "
            "the codec server serves no one without it (or use --jwks-url for Temporal Cloud)"
        )
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


@dataclass(frozen=True)
class Access:
    """Who may decode: holders of the codec token, and (Cloud mode) bearers of a valid UI
    access token. At least one of the two."""

    token: str | None = None
    access_tokens: AccessTokens | None = None

    def __post_init__(self) -> None:
        if self.token is None and self.access_tokens is None:
            raise ValueError("the codec server needs a token or a JWKS to check access tokens")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("the codec server token must be at least 16 characters")

    def is_token(self, offered: str) -> bool:
        return (
            self.token is not None
            and bool(offered)
            and hmac.compare_digest(offered.encode(), self.token.encode())
        )

    async def allows(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        bearer = header[7:] if header.startswith("Bearer ") else ""
        if self.is_token(bearer or request.cookies.get(COOKIE, "")):
            return True
        return (
            bool(bearer)
            and self.access_tokens is not None
            and (await self.access_tokens.verify_async(bearer))
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _cors(response: web.StreamResponse, origin: str | None) -> web.StreamResponse:
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response


def _preflight(request: web.Request, origin: str | None) -> web.StreamResponse:
    """The answer to the browser's preflight: the UI sends JSON, `X-Namespace` and (Cloud)
    `Authorization`; whatever headers it asks for are allowed, the credentials decide."""
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = request.headers.get(
        "Access-Control-Request-Headers", _DEFAULT_HEADERS
    )
    response.headers["Access-Control-Max-Age"] = "600"
    return _cors(response, origin)


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _guard(access: Access, origins: frozenset[str]) -> Middleware:
    """Every request: from an allowed origin (or none, or this server's own sign-in form),
    and authorised unless it is the health check or the sign-in form; CORS headers on
    whatever is answered to a browser."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin == _own_origin(request) and request.path == "/login":
            return await handler(request)
        if origin is not None and origin not in origins:
            return _error(403, "origin not allowed")
        if request.method == "OPTIONS":
            return _preflight(request, origin)
        if request.path not in _OPEN_PATHS and not await access.allows(request):
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


def _login(access: Access) -> Handler:
    """Exchange the token for an HttpOnly cookie, for a UI set to send credentials."""

    async def login(request: web.Request) -> web.StreamResponse:
        if access.token is None:
            return _error(404, "no codec token: sign in to Temporal Cloud's UI instead")
        if request.method == "GET":
            return web.Response(text=_LOGIN_FORM, content_type="text/html")
        form = await request.post()
        if not access.is_token(str(form.get("token", ""))):
            return _error(401, "wrong codec token")
        response = web.Response(text="signed in: the Temporal UI can now decode payloads")
        # Cross-site (a UI on another domain) only a Secure, SameSite=None cookie is sent;
        # browsers refuse those over plain HTTP, where the UI must be on the same site.
        secure = request.secure
        response.set_cookie(
            COOKIE,
            access.token,
            httponly=True,
            secure=secure,
            samesite="None" if secure else "Lax",
            max_age=SESSION_SECONDS,
        )
        return response

    return login


def create_app(
    keyring: PayloadKeyring, access: Access | str, allowed_origins: Collection[str]
) -> web.Application:
    """The application; `access` may be just the codec token."""
    if isinstance(access, str):
        access = Access(token=access)
    codec = EncryptionCodec(keyring)
    app = web.Application(
        middlewares=[_guard(access, frozenset(allowed_origins))], client_max_size=_MAX_BODY
    )
    app.router.add_post("/decode", _transform(codec, decode=True))
    app.router.add_post("/encode", _transform(codec, decode=False))
    app.router.add_get("/healthz", _healthz)
    app.router.add_route("*", "/login", _login(access))
    # aiohttp answers OPTIONS only for registered routes; the guard handles the preflight.
    app.router.add_route("OPTIONS", "/{tail:.*}", _healthz)
    return app


def tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 at least) from a PEM certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the codec server's TLS certificate: {exc}") from None
    return context


async def start(
    keyring: PayloadKeyring,
    access: Access | str,
    allowed_origins: Collection[str],
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Start in the current event loop; return the runner (to clean up) and the bound port."""
    return await serve_app(create_app(keyring, access, allowed_origins), host, port, tls)
