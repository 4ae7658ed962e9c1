"""A production worker starts nothing of its own: without Temporal, without a database, on an
unmigrated database or as a role that bypasses row-level security it refuses, in one line,
with exit code 2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from charter.config.settings import app_dsn
from tests.support.processes import clean_env, free_port, run, worker_py
from tests.support.scratch import with_database


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _started_nothing(cwd: Path) -> None:
    # The embedded stack keeps its data, pid files and logs in the state directory.
    assert not (cwd / ".charter").exists()


async def test_refuses_without_a_temporal_address(tmp_path: Path, admin_dsn: str) -> None:
    env = clean_env(tmp_path, DATABASE_URL=admin_dsn)
    code, _, err = await run(env, worker_py(), cwd=tmp_path)
    assert code == 2
    line = _one_line(err)
    assert "TEMPORAL_ADDRESS is not set" in line and "charter up" in line
    _started_nothing(tmp_path)


async def test_refuses_without_a_database(tmp_path: Path, env: WorkflowEnvironment) -> None:
    address = env.client.service_client.config.target_host
    code, _, err = await run(
        clean_env(tmp_path, TEMPORAL_ADDRESS=address), worker_py(), cwd=tmp_path
    )
    assert code == 2
    assert "CHARTER_APP_DATABASE_URL (or DATABASE_URL) is not set" in _one_line(err)
    _started_nothing(tmp_path)


async def test_refuses_an_unreachable_temporal(tmp_path: Path, admin_dsn: str) -> None:
    env = clean_env(tmp_path, DATABASE_URL=admin_dsn, TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    code, _, err = await run(env, worker_py(), cwd=tmp_path)
    assert code == 2
    assert "cannot reach Temporal at 127.0.0.1:" in _one_line(err)


async def test_refuses_a_superuser_dsn(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> None:
    address = env.client.service_client.config.target_host
    child = clean_env(tmp_path, TEMPORAL_ADDRESS=address, CHARTER_APP_DATABASE_URL=admin_dsn)
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    assert code == 2
    line = _one_line(err)
    assert "unsafe database configuration" in line and "bypasses row-level security" in line


@pytest.fixture
async def unmigrated_dsn(pg_server: str) -> AsyncIterator[str]:
    """A fresh database on the session's server that `charter migrate` never touched."""
    name = f"charter_unmigrated_{free_port()}"
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield with_database(pg_server, name)
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def test_refuses_an_unmigrated_database(
    tmp_path: Path, admin_dsn: str, unmigrated_dsn: str, env: WorkflowEnvironment
) -> None:
    # The application role exists on the server (the session database is migrated), so the
    # worker gets in: what it must notice is the schema this code needs is not there.
    address = env.client.service_client.config.target_host
    child = clean_env(
        tmp_path, TEMPORAL_ADDRESS=address, CHARTER_APP_DATABASE_URL=app_dsn(unmigrated_dsn)
    )
    code, _, err = await run(child, worker_py(), cwd=tmp_path)
    assert code == 2
    line = _one_line(err)
    assert "lacks migration(s) 001_core" in line and "charter migrate" in line
    # ... and it applied none of them.
    conn = await asyncpg.connect(unmigrated_dsn)
    try:
        assert await conn.fetchval("SELECT to_regnamespace('charter')") is None
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"CHARTER_DB_POOL_SIZE": "10"}, "CHARTER_DB_POOL_SIZE=10 can starve"),
        (
            {"CHARTER_PROVIDER_LIMITS": "modern-treasury=95", "CHARTER_DB_POOL_SIZE": "200"},
            "CHARTER_MAX_CONCURRENT_ACTIVITIES=100 can starve",
        ),
        ({"CHARTER_PROVIDER_LIMITS": "stripe=2"}, "CHARTER_PROVIDER_LIMITS: 'stripe=2'"),
    ],
)
async def test_refuses_a_capacity_that_can_starve(
    settings: dict[str, str], named: str, tmp_path: Path, admin_dsn: str
) -> None:
    # Refused before anything is reached: the Temporal address here answers nobody.
    env = clean_env(
        tmp_path, DATABASE_URL=admin_dsn, TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}", **settings
    )
    code, _, err = await run(env, worker_py(), cwd=tmp_path)
    assert code == 2
    assert named in _one_line(err)
    _started_nothing(tmp_path)
