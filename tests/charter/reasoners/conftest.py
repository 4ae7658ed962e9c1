"""Fixtures for the Claude reasoner: a fake Messages API and a worker whose reasoner is the
real `ClaudeReasoner` (real `anthropic` SDK) pointed at it through `base_url`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps
from charter.reasoners.claude import ClaudeReasoner
from charter.storage import Database
from tests.support.claude_runs import CLAUDE_QUEUE, TEST_API_KEY
from tests.support.standins.messages_api import FakeMessagesApi
from tests.support.vault import session_vault
from worker import build_worker


@pytest.fixture(scope="session")
def fake_api() -> Iterator[FakeMessagesApi]:
    api = FakeMessagesApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def claude_reasoner(fake_api: FakeMessagesApi) -> ClaudeReasoner:
    return ClaudeReasoner(
        api_key=SecretStr(TEST_API_KEY),
        model="claude-sonnet-4-6",
        max_tokens=2048,
        timeout=timedelta(seconds=10),
        base_url=fake_api.url,
    )


@pytest.fixture(scope="session")
async def claude_worker(
    client: Client, db: Database, claude_reasoner: ClaudeReasoner
) -> AsyncIterator[Worker]:
    w = build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=claude_reasoner), CLAUDE_QUEUE
    )
    async with w:
        yield w
