"""What every response and every request of the inbox is held to.

Every response carries a strict Content-Security-Policy (scripts, styles and connections from
this origin only, no inline script, no framing, forms posting here only) and the headers that
stop sniffing, framing and referrers. Every state-changing request must come from this origin
(its `Origin` header) and carry the session's CSRF token, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class Refused(Exception):
    """A request the inbox will not act on; the message is shown as it is."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.decode() not in HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_origin(request: Request, origin: str) -> None:
    sent = request.headers.get("origin")
    if sent != origin:
        raise Refused("this request did not come from the inbox's own pages")


async def check_csrf(request: Request, origin: str, *, form: dict[str, Any] | None = None) -> None:
    """Refuse a state-changing request from another origin or without the session's token."""
    check_origin(request, origin)
    expected = request.session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER) or (form or {}).get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(sent, str):
        raise Refused("this form has expired: reload the page and try again")
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Refused("this form has expired: reload the page and try again")
