"""Configuration picks the transport (HTTP or Socket Mode) over the same listeners; bad
configuration is a clear error; the replay guard stays bounded.

Socket Mode cannot reach real Slack here: the tests check that configuration selects it,
that the handler wraps the very same app, and feed a Socket Mode envelope through bolt's
own Socket Mode dispatch (what the websocket client would hand it).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import asyncpg
import pytest
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.request import SocketModeRequest
from temporalio.client import Client
from temporalio.worker import Worker

from charter.config.settings import Settings
from charter.crypto import statements
from charter.demo.seed import seed
from charter.slack.app import build_app
from charter.slack.config import SlackConfigError, SlackSettings
from charter.slack.replay import ReplayGuard
from charter.slack.server import socket_mode_handler
from charter.storage import Database
from charter.storage import slack_cards as store
from charter_cli import build_parser
from charter_cli._common import CliError
from tests.support.polling import eventually
from tests.support.running import start, until_stage
from tests.support.slack_requests import SLACK_QUEUE, SlackTenant, card_for, click, slack_settings
from tests.support.standins.slack_web_api import BOT_TOKEN, FakeSlack
from tests.support.vault import session_vault


def _socket_settings(api_url: str) -> SlackSettings:
    return SlackSettings(
        bot_token=SecretStr(BOT_TOKEN),
        app_token=SecretStr("xapp-1-test-not-a-real-token"),
        mode="socket",
        api_url=api_url,
    )


def _listeners(app: AsyncApp) -> list[str]:
    return [listener.ack_function.__name__ for listener in app._async_listeners]  # type: ignore[attr-defined]


def _middleware(app: AsyncApp) -> list[str]:
    return [type(m).__name__ for m in app._async_middleware_list]


async def test_socket_mode_is_selected_by_configuration_with_the_same_listeners(
    client: Client,
    slack_worker: Worker,
    db: Database,
    fake_slack: FakeSlack,
    slack_tenant: SlackTenant,
) -> None:
    socket_settings = _socket_settings(fake_slack.base_url)
    socket_app = build_app(
        socket_settings,
        db,
        client,
        front_door=statements.front_door_key("slack", Settings().member_key_folder),
    )
    http_app = build_app(
        slack_settings(fake_slack.base_url),
        db,
        client,
        front_door=statements.front_door_key("slack", Settings().member_key_folder),
    )
    assert _listeners(socket_app) == _listeners(http_app) == ["on_button", "on_submit"]
    # Signed HTTP requests are verified and replay-guarded; a websocket has no signatures.
    chain = _middleware(http_app)
    assert chain[:2] == ["AsyncSslCheck", "SignedRequests"], chain
    assert "SignedRequests" not in _middleware(socket_app)
    assert "AsyncRequestVerification" not in chain + _middleware(socket_app)
    handler = socket_mode_handler(socket_app, socket_settings)
    # The Socket Mode client opens an aiohttp session when it is built: close it, as
    # `charter.slack.server.serve` does, or it leaks ("Unclosed client session").
    try:
        assert isinstance(handler, AsyncSocketModeHandler) and handler.app is socket_app
        assert handler.app_token == "xapp-1-test-not-a-real-token"
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
    assert handler.client.aiohttp_client_session.closed

    # An envelope as the Socket Mode client delivers it reaches the same listener.
    handle = await start(
        client, slack_tenant.tenant_id, "payables", task_queue=SLACK_QUEUE, focus=["INV-1043"]
    )
    await until_stage(handle, "awaiting_decision")
    card = await card_for(fake_slack, slack_tenant.channel)
    envelope = SocketModeRequest(
        type="interactive", envelope_id="e-1", payload=click(card, "charter_approve", "U0LEO")
    )
    response = await run_async_bolt_app(socket_app, envelope)
    assert response.status == 200

    async def told() -> bool:
        return bool(fake_slack.of("chat.postEphemeral", slack_tenant.channel, user="U0LEO"))

    await eventually(told)
    await handle.terminate("test done")


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN"):
        SlackSettings(bot_token=None).check_for_app()
    with pytest.raises(SlackConfigError, match="SLACK_SIGNING_SECRET"):
        SlackSettings(bot_token=SecretStr(BOT_TOKEN), signing_secret=None).check_for_app()
    with pytest.raises(SlackConfigError, match="SLACK_APP_TOKEN"):
        SlackSettings(bot_token=SecretStr(BOT_TOKEN), mode="socket", app_token=None).check_for_app()
    # Secrets never print.
    shown = repr(SlackSettings(bot_token=SecretStr(BOT_TOKEN), signing_secret=SecretStr("s3cr3t")))
    assert BOT_TOKEN not in shown and "s3cr3t" not in shown


def test_replay_guard_refuses_repeats_and_stays_bounded() -> None:
    guard = ReplayGuard(window=300, max_entries=3)
    assert guard.first_time("v0=a", "1000", now=1000)
    assert not guard.first_time("v0=a", "1000", now=1001)
    assert not guard.first_time("v0=b", "not-a-number", now=1001)
    for sig in ("v0=c", "v0=d", "v0=e"):
        assert guard.first_time(sig, "1000", now=1002)
    assert len(guard._seen) == 3  # the oldest was forgotten; bolt refuses it once stale
    # Entries leave once their timestamp is outside the window.
    assert guard.first_time("v0=f", "1400", now=1400)
    assert list(guard._seen) == ["v0=f"]


async def test_replay_memory_is_shared_through_postgresql(db: Database) -> None:
    """A second (or restarted) `charter slack` refuses a request the first one saw, and the
    application role reaches the memory only through its function."""
    now = str(int(time.time()))
    signature = f"v0={uuid.uuid4().hex}"
    first, second = ReplayGuard(db=db), ReplayGuard(db=db)
    assert await first.remember(signature, now)
    assert not await second.remember(signature, now)
    assert await second.remember(f"v0={uuid.uuid4().hex}", now)
    async with db.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM charter_meta.slack_requests")


async def test_charter_slack_configure(
    admin_dsn: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = f"c-{uuid.uuid4().hex[:10]}"
    await seed(
        db, tenant, template="acme", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # configure never connects to it
    base = ["slack", "configure", "--tenant", tenant, "--channel", "C0APPROVALS"]
    # Bad input: a clear error (exit code 2) and nothing saved.
    for extra in (
        ["--backup", "leo", "--backup-after", "PT4H"],  # a viewer cannot be the backup
        ["--backup", "sam"],
        ["--backup", "sam", "--backup-after", "soon"],
    ):
        assert await _run(base + extra) == 2
    assert await _run(["slack", "configure", "--tenant", tenant, "--channel", "#general"]) == 2
    async with db.tenant(tenant) as conn:
        assert await store.get_config(conn, tenant) is None
    assert await _run([*base, "--backup", "sam", "--backup-after", "PT4H"]) == 0
    async with db.tenant(tenant) as conn:
        config = await store.get_config(conn, tenant)
    assert config is not None and config.channel_id == "C0APPROVALS"
    assert config.backup_member_id == "sam" and config.backup_after == timedelta(hours=4)


async def _run(argv: list[str]) -> int:
    """Run a CLI command as `charter` would, inside this event loop (main() starts its own)."""
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = await result
        return int(result or 0)
    except CliError:
        return 2
