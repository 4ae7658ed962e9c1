"""Fixtures for the Claude reasoner: a fake Messages API and a worker whose reasoner is the
real `ClaudeReasoner` (real `anthropic` SDK) pointed at it through `base_url`."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities import Deps
from charter.reasoners.claude import ClaudeReasoner
from charter.storage import Database
from schemas import AgentRunInput, RunState
from starter import start_run
from tests.reasoners.fake_messages_api import FakeMessagesApi
from tests.support.polling import eventually
from worker import build_worker
from workflows import AgentLoop

CLAUDE_QUEUE = "charter-claude-test"
#: Looks like a key so that a leak would be recognisable in logs, payloads or the database.
TEST_API_KEY = "sk-ant-test-" + "k3y" * 10


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
    w = build_worker(client, Deps(db=db, reasoner=claude_reasoner), CLAUDE_QUEUE)
    async with w:
        yield w


async def start(client: Client, tenant: str, agent: str, **kw: object) -> WorkflowHandle:  # type: ignore[type-arg]
    run = AgentRunInput(tenant_id=tenant, agent=agent, trigger=f"t-{uuid.uuid4().hex[:8]}", **kw)  # type: ignore[arg-type]
    return await start_run(client, run, task_queue=CLAUDE_QUEUE)


async def settled(handle: WorkflowHandle) -> RunState:  # type: ignore[type-arg]
    """Wait until the run has gated everything: it completed or waits on a human."""

    async def check() -> RunState | None:
        state = await handle.query(AgentLoop.state)
        return state if state.stage in ("awaiting_decision", "completed") else None

    return await eventually(check, timeout=60)


async def charter_cli(
    admin_dsn: str, client: Client, tmp_path: Path, *args: str
) -> tuple[int, str]:
    """Run the `charter` CLI as a separate process against the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": admin_dsn,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
        "COLUMNS": "200",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "charter_cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()
