"""What every handler of the inbox works with, built once by `charter web`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.templating import Jinja2Templates
from temporalio.client import Client

from charter.storage import Database
from charter.web.config import WebSettings


@dataclass(frozen=True)
class WebContext:
    settings: WebSettings
    db: Database
    client: Client
    namespace: str
    temporal_ui_url: str
    templates: Jinja2Templates

    @property
    def origin(self) -> str:
        return self.settings.public_origin()


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.charter
    return ctx
