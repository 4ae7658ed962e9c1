"""The embedded stack `make demo` relies on, and `charter up` keeping a worker running."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from charter.config.settings import Settings
from charter.stack.embedded import ensure_stack, stop_stack
from charter.storage import Database
from charter.temporal import search_attributes as sa
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunResult, workflow_id_for
from tests.support.paths import REPO
from tests.support.processes import child, free_port, run
from tests.support.running import chain_ok


@pytest.fixture
def state() -> Iterator[Path]:
    """A state directory outside pytest's: the embedded PostgreSQL runs as a user of its own,
    which must traverse every directory above its data, and a pytest session starting on
    this machine (another xdist worker) makes /tmp/pytest-of-<user> private again."""
    with tempfile.TemporaryDirectory(prefix="charter-stack-") as path:
        os.chmod(path, 0o755)
        yield Path(path) / "state"


async def test_embedded_stack_starts_migrates_and_stops(state: Path) -> None:
    port, ui_port, codec_port = free_port(), free_port(), free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        state_dir=state,
        temporal_port=port,
        temporal_ui_port=ui_port,
        codec_server_port=codec_port,
        database_url=None,
        temporal_address=None,
    )
    try:
        stack = await ensure_stack(settings)
        assert stack.temporal_address == f"127.0.0.1:{port}"
        # PostgreSQL: migrated, and the application role is neither superuser nor BYPASSRLS.
        conn = await asyncpg.connect(stack.app_dsn)
        try:
            role = await conn.fetchrow(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            assert role is not None and not role["rolsuper"] and not role["rolbypassrls"]
            assert await conn.fetchval("SELECT count(*) FROM charter.tenants") == 0
        finally:
            await conn.close()
        # Temporal: the dev server knows Charter's search attributes.
        client = await Client.connect(
            stack.temporal_address, plugins=[CharterPlugin.from_settings(Settings())]
        )
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert {k.name for k in sa.ALL} <= set(listed.custom_attributes)
        # Idempotent: a second start finds both running.
        again = await ensure_stack(settings)
        assert again.admin_dsn == stack.admin_dsn
    finally:
        stopped = await asyncio.to_thread(stop_stack, state)
    assert set(stopped) == {"temporal", "postgres", "codec-server"}


async def test_charter_up_serves_runs_started_by_starter_py(
    admin_dsn: str, env: WorkflowEnvironment, db: Database, tenant: str, tmp_path: Path
) -> None:
    address = env.client.service_client.config.target_host
    queue = f"charter-up-{tenant}"
    child_env = {
        **os.environ,
        "DATABASE_URL": admin_dsn,
        "TEMPORAL_ADDRESS": address,
        "CHARTER_TASK_QUEUE": queue,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
    }
    output = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.STDOUT}
    async with child(child_env, "-m", "charter_cli", "up", cwd=tmp_path, **output) as up:
        try:
            code, out, err = await run(
                child_env,
                "starter.py",
                tenant,
                "payables",
                "webhook-INV-1041",
                "--focus",
                "INV-1041",
                "--address",
                address,
                "--task-queue",
                queue,
                cwd=REPO,
                timeout=60,
            )
            assert code == 0, out + err
            assert "started charter/" in out
            handle = env.client.get_workflow_handle(
                workflow_id_for(tenant, "payables", "webhook-INV-1041"),
                result_type=AgentRunResult,
            )
            # `charter up` starts a worker in a fresh interpreter: minutes on a loaded machine.
            result = await asyncio.wait_for(handle.result(), 180)
            assert result.proposals[0].status == "executed"
            await chain_ok(db, tenant)
        finally:
            up.send_signal(signal.SIGINT)
            said, _ = await asyncio.wait_for(up.communicate(), 30)
    assert up.returncode == 0, said.decode()
    assert b"worker running" in said
