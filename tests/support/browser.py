"""The web inbox served on a free port in the test's own event loop, and Debian's Chromium
driven over the DevTools protocol (Playwright pointed at the system executable: nothing is
downloaded) with a virtual authenticator standing in for the founder's passkey."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright
from temporalio.client import Client

from charter.storage import Database
from charter.web.app import build_app
from charter.web.config import WebSettings
from charter.web.server import server

#: Where the README's screenshots are written when asked (`CHARTER_WEB_SCREENSHOTS=docs/web`).
SCREENSHOTS = os.environ.get("CHARTER_WEB_SCREENSHOTS")
UI_URL = "http://localhost:8233"


def chromium() -> str:
    """Debian's Chromium (`.ci/run` installs it): the tests fail, never skip, without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError("the browser tests need Chromium: apt-get install chromium")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def inbox(db: Database, client: Client) -> AsyncIterator[str]:
    """Serve the inbox for http://localhost:<port>; its origin."""
    settings = WebSettings(host="127.0.0.1", port=free_port(), session_secret=None)
    app = build_app(settings, db, client, namespace=client.namespace, temporal_ui_url=UI_URL)
    web = server(app, settings)
    task = asyncio.create_task(web.serve())
    try:
        while not web.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield settings.public_origin()
    finally:
        web.should_exit = True
        await task


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        # Root on CI: Chromium's sandbox needs an unprivileged user.
        found = await p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield found
        finally:
            await found.close()


async def with_authenticator(page: Page) -> str:
    """A virtual platform authenticator on `page`: discoverable credentials, user verified,
    presence simulated. Its id."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    options: dict[str, Any] = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return str(added["authenticatorId"])


async def screenshot(page: Page, name: str, folder: Path) -> Path:
    """A PNG of the page, in `folder` and in CHARTER_WEB_SCREENSHOTS when that is set."""
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if SCREENSHOTS:
        await asyncio.to_thread(_keep, path, Path(SCREENSHOTS))
    return path


def _keep(path: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, folder / path.name)
