"""Fixtures for the Slack tests: the Web API stand-in, the real bolt app over HTTP, and a
worker whose activities notify Slack. Requests are signed exactly as Slack signs them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps
from charter.config.settings import Settings
from charter.crypto import statements
from charter.demo.seed import enroll_members, seed
from charter.reasoners import OfflineReasoner
from charter.slack.app import build_app
from charter.slack.server import http_app
from charter.storage import Database
from tests.support.slack_requests import (
    SLACK_QUEUE,
    SlackApp,
    SlackTenant,
    configure,
    notifier,
    slack_settings,
)
from tests.support.standins.serving import serve
from tests.support.standins.slack_web_api import FakeSlack
from tests.support.vault import session_vault
from worker import build_worker


@pytest.fixture(scope="session")
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    runner, fake.port = await serve(fake.app())
    yield fake
    await runner.cleanup()


@pytest.fixture(scope="session")
async def slack_worker(
    client: Client, db: Database, fake_slack: FakeSlack
) -> AsyncIterator[Worker]:
    deps = Deps(
        credentials=session_vault(),
        db=db,
        reasoner=OfflineReasoner(),
        notifier=notifier(db, fake_slack),
    )
    w = build_worker(client, deps, SLACK_QUEUE)
    async with w:
        yield w


@pytest.fixture(scope="session")
async def slack_app(client: Client, db: Database, fake_slack: FakeSlack) -> AsyncIterator[SlackApp]:
    bolt = build_app(
        slack_settings(fake_slack.base_url),
        db,
        client,
        front_door=statements.front_door_key("slack", Settings().member_key_folder),
    )
    runner, port = await serve(http_app(bolt))
    async with aiohttp.ClientSession() as http:
        yield SlackApp(f"http://127.0.0.1:{port}/slack/events", http)
    await runner.cleanup()


@pytest.fixture
async def slack_tenant(db: Database, admin_dsn: str) -> SlackTenant:
    """A fresh Acme tenant whose exception cards go to a channel of its own; its members' and
    the Slack front door's keys enrolled."""
    tenant_id = f"s-{uuid.uuid4().hex[:10]}"
    await seed(
        db, tenant_id, template="acme", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    await enroll_members(
        admin_dsn, tenant_id, template="acme", actor="test", folder=Settings().member_key_folder
    )
    return await configure(db, tenant_id)
