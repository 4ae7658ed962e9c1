"""The Starlette application: routes, the session, the security headers, and one clear
message for every refusal.

A page asks for HTML and gets a page with the message; the page's script asks for JSON
(`Accept: application/json`) and gets `{"error": message}`. Not being signed in sends a
page to the sign-in page of the tenant it asked for.
"""

from __future__ import annotations

import logging
import secrets
from importlib import resources
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from temporalio.client import Client

from charter.crypto.errors import CryptoError
from charter.services.deciding import DecisionNotSent, DecisionRefused, RunUnreachable
from charter.services.key_enrolment import EnrolmentRefused
from charter.storage import Database
from charter.web import deciding_flow, pages, passkey_flows
from charter.web.config import WebSettings
from charter.web.context import WebContext
from charter.web.security import Refused, SecurityHeaders
from charter.web.sessions import NotSignedIn

log = logging.getLogger(__name__)

_TENANT = "/t/{tenant:str}"
_EXCEPTION = _TENANT + "/exceptions/{exception:str}"


def _folder(name: str) -> Path:
    return Path(str(resources.files("charter.web") / name))


def routes() -> list[Route | Mount]:
    post = ["POST"]
    return [
        Route("/healthz", lambda _: PlainTextResponse("ok")),
        Mount("/static", StaticFiles(directory=_folder("static")), name="static"),
        Route(_TENANT + "/enrol/{token:str}", passkey_flows.enrol_page),
        Route(_TENANT + "/enrol/{token:str}/options", passkey_flows.enrol_options, methods=post),
        Route(_TENANT + "/enrol/{token:str}", passkey_flows.enrol_finish, methods=post),
        Route(_TENANT + "/signin", passkey_flows.signin_page),
        Route(_TENANT + "/signin/options", passkey_flows.signin_options, methods=post),
        Route(_TENANT + "/signin", passkey_flows.signin_finish, methods=post),
        Route("/signout", passkey_flows.signout, methods=post),
        Route(_TENANT + "/", pages.inbox),
        Route(_TENANT + "/constitution", pages.constitution_page),
        Route(_TENANT + "/runs/{workflow_id:path}/audit", pages.run_audit_page),
        Route(_EXCEPTION, pages.exception_page),
        Route(_EXCEPTION + "/statement", deciding_flow.make_statement, methods=post),
        Route(_EXCEPTION + "/decide", deciding_flow.decide, methods=post),
        Route(_EXCEPTION + "/status", deciding_flow.status),
    ]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _refusal(request: Request, message: str, status: int) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.charter.templates
    return templates.TemplateResponse(
        request, "refused.html", {"message": message}, status_code=status
    )


async def on_refused(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotSignedIn) and not _wants_json(request):
        return RedirectResponse(f"/t/{exc.tenant_id}/signin", status_code=303)
    if isinstance(exc, Refused):
        return _refusal(request, str(exc), exc.status)
    if isinstance(exc, DecisionRefused | RunUnreachable):
        return _refusal(request, f"Not decided: {exc}", 409)
    if isinstance(exc, DecisionNotSent | EnrolmentRefused):
        return _refusal(request, str(exc), 409 if isinstance(exc, DecisionNotSent) else 410)
    if isinstance(exc, CryptoError):
        # What failed to verify, never key material: the messages are written for people.
        return _refusal(request, str(exc), 400)
    if isinstance(exc, HTTPException):
        return _refusal(request, str(exc.detail), exc.status_code)
    raise exc


def templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_folder("templates")),
        autoescape=True,
        # An undefined name is a bug in a template, never an empty string shown to a founder.
        undefined=jinja2.StrictUndefined,
    )
    return Jinja2Templates(env=environment)


def build_app(
    settings: WebSettings, db: Database, client: Client, *, namespace: str, temporal_ui_url: str
) -> Starlette:
    secret = settings.session_secret
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret.get_secret_value() if secret else secrets.token_urlsafe(48),
            session_cookie="charter_session",
            max_age=settings.session_minutes * 60,
            same_site="strict",
            https_only=settings.public_origin().startswith("https://"),
        ),
    ]
    handlers: dict[int | type[Exception], object] = {
        kind: on_refused
        for kind in (Refused, DecisionNotSent, EnrolmentRefused, CryptoError, HTTPException)
    }
    app = Starlette(routes=routes(), middleware=middleware, exception_handlers=handlers)  # type: ignore[arg-type]
    app.state.charter = WebContext(
        settings=settings,
        db=db,
        client=client,
        namespace=namespace,
        temporal_ui_url=temporal_ui_url,
        templates=templates(),
    )
    return app
