"""The codec server: token, origin, fail-closed decoding — and the embedded stack's Temporal
UI pointed at it (`--ui-codec-endpoint`), decoding a real payload fetched from history."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from charter.config.settings import Settings
from charter.crypto.codec import default_payload_keyring
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
from tests.support.codec_requests import TOKEN, as_json
from tests.support.polling import eventually
from tests.support.processes import free_port

UI = "http://localhost:8233"


async def history_input(client: Client, tenant: str) -> Payload:
    """Start a run (no worker needed) and fetch its input payload from Temporal's history."""
    run = AgentRunInput(tenant_id=tenant, agent="payables", trigger=f"t-{uuid.uuid4().hex[:8]}")
    handle = await start_run(client, run, task_queue=f"idle-{uuid.uuid4().hex[:6]}")
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    await handle.terminate("test done")
    return started.input.payloads[0]


@pytest.fixture
async def server() -> AsyncIterator[str]:
    runner, port = await codec_server.start(default_payload_keyring(Settings()), TOKEN, [UI])
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def post(url: str, body: object, **headers: str) -> tuple[int, dict[str, str], object]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status, dict(r.headers), await r.json()


async def test_refuses_missing_or_wrong_token(server: str, client: Client) -> None:
    payload = await history_input(client, "acme")
    body = as_json([payload])
    status, _, error = await post(f"{server}/decode", body, Origin=UI)
    assert status == 401 and error == {"error": "missing or wrong codec token"}
    status, _, _ = await post(
        f"{server}/decode", body, Origin=UI, Authorization="Bearer " + TOKEN[:-1] + "y"
    )
    assert status == 401
    status, _, _ = await post(f"{server}/decode", body, Authorization=TOKEN)  # not a bearer
    assert status == 401


async def test_refuses_a_foreign_origin(server: str) -> None:
    status, headers, _ = await post(
        f"{server}/decode",
        {"payloads": []},
        Origin="https://evil.example",
        Authorization=f"Bearer {TOKEN}",
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{server}/decode",
            headers={"Origin": "http://localhost:9999", "Access-Control-Request-Method": "POST"},
        ) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        async with http.options(
            f"{server}/decode",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
            },
        ) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == UI
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()


async def test_decodes_a_real_payload_and_never_passes_tampering_through(
    server: str, client: Client
) -> None:
    payload = await history_input(client, "acme")
    assert payload.metadata["encoding"] == b"binary/encrypted"
    status, headers, decoded = await post(
        f"{server}/decode", as_json([payload]), Origin=UI, Authorization=f"Bearer {TOKEN}"
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == UI
    [plain] = decoded["payloads"]  # type: ignore[index]
    assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(plain["data"]))["tenant_id"] == "acme"
    # Round trip through /encode and back.
    status, _, encoded = await post(f"{server}/encode", decoded, Authorization=f"Bearer {TOKEN}")
    assert status == 200
    status, _, again = await post(f"{server}/decode", encoded, Authorization=f"Bearer {TOKEN}")
    assert again == decoded
    tampered = Payload(
        metadata=dict(payload.metadata), data=payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    )
    status, _, error = await post(
        f"{server}/decode", as_json([tampered]), Authorization=f"Bearer {TOKEN}"
    )
    assert status == 400 and error == {"error": "payload failed to decode"}
    plaintext = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
    status, _, _ = await post(
        f"{server}/decode", as_json([plaintext]), Authorization=f"Bearer {TOKEN}"
    )
    assert status == 400
    status, _, _ = await post(
        f"{server}/decode", {"payloads": "nope"}, Authorization=f"Bearer {TOKEN}"
    )
    assert status == 400


async def test_login_cookie_for_the_browser(server: str, client: Client) -> None:
    payload = await history_input(client, "acme")
    own = {"Origin": server}  # the sign-in form posts from the codec server's own page
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{server}/login", data={"token": "wrong"}, headers=own) as r:
            assert r.status == 401
        foreign = {"Origin": "https://evil.example"}
        async with http.post(f"{server}/login", data={"token": TOKEN}, headers=foreign) as r:
            assert r.status == 403
        async with http.post(f"{server}/login", data={"token": TOKEN}, headers=own) as r:
            assert r.status == 200
            cookie = r.headers["Set-Cookie"]
            # Plain HTTP: the UI on another port of this host is the same site, so Lax.
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        async with http.post(
            f"{server}/decode", json=as_json([payload]), headers={"Origin": UI}
        ) as r:
            assert r.status == 200


def temporal_cmdline(state: Path) -> list[bytes]:
    pid = int((state / "temporal.pid").read_text())
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


async def test_embedded_ui_decodes_through_the_codec_server(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port, ui_port, codec_port = free_port(), free_port(), free_port()
    try:
        codec_url = await asyncio.to_thread(start_codec_server, state, codec_port, ui_port)
        address = await asyncio.to_thread(start_temporal, state, port, ui_port, codec_url)
        cmdline = temporal_cmdline(state)
        assert cmdline[cmdline.index(b"--ui-codec-endpoint") + 1] == codec_url.encode()
        async with aiohttp.ClientSession() as http:

            async def settings() -> dict[str, object] | None:
                try:
                    async with http.get(f"http://127.0.0.1:{ui_port}/api/v1/settings") as r:
                        return await r.json() if r.status == 200 else None
                except aiohttp.ClientError:
                    return None

            ui_settings = await eventually(settings, timeout=30)
        assert ui_settings["Codec"]["Endpoint"] == codec_url  # type: ignore[index]
        client = await Client.connect(address, plugins=[CharterPlugin.from_settings(Settings())])
        payload = await history_input(client, "initech")
        token = (state / codec_server.TOKEN_FILE).read_text().strip()
        assert oct((state / codec_server.TOKEN_FILE).stat().st_mode & 0o777) == "0o600"
        ui_origin = f"http://localhost:{ui_port}"
        status, headers, decoded = await post(
            f"{codec_url}/decode",
            as_json([payload]),
            Origin=ui_origin,
            Authorization=f"Bearer {token}",
        )
        assert status == 200 and headers["Access-Control-Allow-Origin"] == ui_origin
        [plain] = decoded["payloads"]  # type: ignore[index]
        assert json.loads(base64.b64decode(plain["data"]))["tenant_id"] == "initech"
        status, _, _ = await post(f"{codec_url}/decode", as_json([payload]), Origin=ui_origin)
        assert status == 401
        status, _, _ = await post(
            f"{codec_url}/decode", as_json([payload]), Origin=UI, Authorization=f"Bearer {token}"
        )
        assert status == 403  # :8233 is not this UI's origin
    finally:
        stop_temporal(state)
        stop_codec_server(state)
