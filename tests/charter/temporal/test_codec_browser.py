"""A real browser: headless Chromium signs in to the codec server on its own page, then the
embedded Temporal UI shows a workflow's input decoded — the cookie crossing from the UI's
origin to the codec server's with CORS credentials, as a browser enforces them."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, async_playwright
from temporalio.client import Client

from charter.config.settings import Settings
from charter.stack.embedded import (
    start_codec_server,
    start_temporal,
    stop_codec_server,
    stop_temporal,
)
from charter.temporal import codec_server
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput
from starter import start_run
from tests.support.processes import free_port

#: Debian's package; `.ci/run` installs it. Playwright drives it, it downloads no browser.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def _sign_in(page: Page, codec_url: str, token: str) -> None:
    await page.goto(f"{codec_url}/login")
    await page.fill("input[name=token]", token)
    await page.click("button")
    await page.wait_for_selector("text=signed in")


async def _use_codec_with_credentials(page: Page, ui_url: str, codec_url: str) -> None:
    """The UI's own "Codec Server" setting, as a user ticks it: this endpoint, include
    cross-origin credentials. (The dev server cannot set it; compose's UI does, with
    TEMPORAL_CODEC_INCLUDE_CREDENTIALS.)"""
    await page.goto(ui_url)
    stored = {
        "endpoint": codec_url,
        "includeCredentials": True,
        "passAccessToken": False,
        "overrideRemoteCodecConfiguration": True,
    }
    await page.evaluate(
        "(items) => { for (const [k, v] of Object.entries(items))"
        " localStorage.setItem(k, JSON.stringify(v)); }",
        stored,
    )


async def _decode_status(page: Page, url: str) -> int:
    """Open `url`; the status of the first call the UI makes to the codec server."""
    async with page.expect_response(lambda r: "/decode" in r.url, timeout=60_000) as answer:
        await page.goto(url)
    return (await answer.value).status


async def test_chromium_reads_a_decoded_workflow_after_signing_in(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does)")
    state = tmp_path / "state"
    port, ui_port, codec_port = free_port(), free_port(), free_port()
    trigger = f"browser-{uuid.uuid4().hex[:8]}"
    try:
        codec_url = await asyncio.to_thread(start_codec_server, state, codec_port, ui_port)
        address = await asyncio.to_thread(start_temporal, state, port, ui_port, codec_url)
        client = await Client.connect(address, plugins=[CharterPlugin.from_settings(Settings())])
        run = AgentRunInput(tenant_id="initech", agent="payables", trigger=trigger)
        handle = await start_run(client, run, task_queue=f"idle-{uuid.uuid4().hex[:6]}")
        token = (state / codec_server.TOKEN_FILE).read_text().strip()
        ui_url = f"http://localhost:{ui_port}"
        # The id has slashes (`charter/<tenant>/<agent>/<digest>`): one path segment.
        history = (
            f"{ui_url}/namespaces/default/workflows/{quote(handle.id, safe='')}"
            f"/{handle.result_run_id}/history"
        )
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                # Not signed in: the UI's calls are refused, nothing decoded is shown.
                stranger = await browser.new_page()
                await _use_codec_with_credentials(stranger, ui_url, codec_url)
                assert await _decode_status(stranger, history) == 401
                # Signed in on the codec server's own page: the UI decodes.
                page = await browser.new_page()
                await _sign_in(page, codec_url, token)
                await _use_codec_with_credentials(page, ui_url, codec_url)
                assert await _decode_status(page, history) == 200
                # The input as the UI shows it once decoded: the trigger is inside the
                # ciphertext only, so seeing it proves the codec server answered the page.
                await page.wait_for_selector(f"text={trigger}", timeout=60_000)
            finally:
                await browser.close()
        await handle.terminate("test done")
    finally:
        stop_temporal(state)
        stop_codec_server(state)
    assert json.dumps(trigger) not in (state / "temporal.db").read_text(errors="ignore")
