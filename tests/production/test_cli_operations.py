"""The CLI as an operator meets it: its version, configuration errors in one line with exit
code 2, migrations only on request, and a failed run reported at once.

Each command runs through the CLI's `main` in this process, with the environment a child
would get (`operator_env`): a child per command cost seconds of imports. The console script
itself runs as a child in test_compose_services.py (the compose file's `cli` service)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from charter_cli import version
from tests.support.cli import operator_env, run_main
from tests.support.processes import free_port
from tests.support.queues import TASK_QUEUE


def _error_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error: "), out
    return lines[0]


async def test_version(tmp_path: Path) -> None:
    ran = await run_main("--version", env=operator_env(tmp_path))
    assert ran.code == 0
    assert ran.out.strip() == f"charter {version()}" and version() != "unknown"


async def test_decide_while_temporal_is_unreachable(tmp_path: Path, admin_dsn: str) -> None:
    env = operator_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    ran = await run_main("decide", "ex-0", "approve", "-t", "acme", "--as", "maya", env=env)
    assert ran.code == 2, ran.err
    assert "cannot reach Temporal at 127.0.0.1:" in _error_line(ran.out)
    assert ran.err == ""


async def test_an_unsafe_application_dsn_is_one_line(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> None:
    child = operator_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        CHARTER_APP_DATABASE_URL=admin_dsn,  # the administrator, posing as the application
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    ran = await run_main("exceptions", "list", "-t", "acme", env=child)
    assert ran.code == 2, ran.err
    assert "bypasses row-level security" in _error_line(ran.out)


async def test_migrate_needs_the_administrator_dsn(tmp_path: Path, admin_dsn: str) -> None:
    # The state directory a child started in `tmp_path` would use.
    state = str(tmp_path / ".charter")
    ran = await run_main("migrate", env=operator_env(tmp_path, CHARTER_STATE_DIR=state))
    assert ran.code == 2
    assert "DATABASE_URL (the administrator's DSN) is not set" in _error_line(ran.out)
    assert not (tmp_path / ".charter").exists()  # no embedded PostgreSQL was started

    with_admin = operator_env(tmp_path, DATABASE_URL=admin_dsn, CHARTER_STATE_DIR=state)
    ran = await run_main("migrate", env=with_admin)
    assert ran.code == 0, ran.output
    assert "is up to date" in ran.out


async def test_run_reports_a_failed_run_at_once(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, worker: Worker
) -> None:
    # A tenant with no books and no credentials: the read stage fails for good.
    child = operator_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_TASK_QUEUE=TASK_QUEUE,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    began = time.monotonic()
    ran = await run_main("run", "nobody", "payables", env=child)
    elapsed = time.monotonic() - began
    assert ran.code == 2, ran.output
    assert "started charter/nobody/payables/" in ran.out
    failure = ran.out.splitlines()[-1]
    assert failure.startswith("error: run charter/nobody/payables/") and " failed: " in failure
    assert elapsed < 30  # not the 60 s settle timeout


@pytest.mark.parametrize("missing", ["TEMPORAL_ADDRESS"])
async def test_temporal_setup_needs_an_address(tmp_path: Path, missing: str) -> None:
    ran = await run_main("temporal", "setup", env=operator_env(tmp_path))
    assert ran.code == 2
    assert "no Temporal address" in _error_line(ran.out) and missing in ran.out


async def test_json_output_of_run_and_exceptions(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, worker: Worker, tenant: str
) -> None:
    child = operator_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_TASK_QUEUE=TASK_QUEUE,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    ran = await run_main("run", tenant, "payables", "--focus", "INV-1043", "--json", env=child)
    assert ran.code == 0, ran.output
    started = json.loads(ran.out)  # nothing but the JSON document on stdout
    assert started["workflow_id"].startswith(f"charter/{tenant}/payables/")
    (proposal,) = started["state"]["proposals"]
    assert proposal["status"] == "awaiting_decision" and proposal["proposal"]["amount"] == "2300.00"
    exception_id = proposal["exception_id"]

    ran = await run_main("exceptions", "list", "-t", tenant, "--json", env=child)
    assert ran.code == 0, ran.output
    assert [row["exception_id"] for row in json.loads(ran.out)] == [exception_id]

    ran = await run_main("exceptions", "show", exception_id, "-t", tenant, "--json", env=child)
    assert ran.code == 0, ran.output
    shown = json.loads(ran.out)
    assert shown["exception_id"] == exception_id and shown["status"] == "open"
