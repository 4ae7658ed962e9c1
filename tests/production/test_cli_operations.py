"""The CLI as an operator meets it: its version, configuration errors in one line with exit
code 2, migrations only on request, and a failed run reported at once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from charter_cli import version
from tests.support.processes import REPO, clean_env, free_port, run
from tests.support.queues import TASK_QUEUE


def _error_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error: "), out
    return lines[0]


async def test_version(tmp_path: Path) -> None:
    code, out, _ = await run(clean_env(tmp_path), "-m", "charter_cli", "--version", cwd=REPO)
    assert code == 0
    assert out.strip() == f"charter {version()}" and version() != "unknown"


async def test_decide_while_temporal_is_unreachable(tmp_path: Path, admin_dsn: str) -> None:
    env = clean_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    argv = ("-m", "charter_cli", "decide", "ex-0", "approve", "-t", "acme", "--as", "maya")
    code, out, err = await run(env, *argv, cwd=tmp_path)
    assert code == 2, err
    assert "cannot reach Temporal at 127.0.0.1:" in _error_line(out)
    assert err == ""


async def test_an_unsafe_application_dsn_is_one_line(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> None:
    child = clean_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        CHARTER_APP_DATABASE_URL=admin_dsn,  # the administrator, posing as the application
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    code, out, err = await run(
        child, "-m", "charter_cli", "exceptions", "list", "-t", "acme", cwd=tmp_path
    )
    assert code == 2, err
    assert "bypasses row-level security" in _error_line(out)


async def test_migrate_needs_the_administrator_dsn(tmp_path: Path, admin_dsn: str) -> None:
    code, out, _ = await run(clean_env(tmp_path), "-m", "charter_cli", "migrate", cwd=tmp_path)
    assert code == 2
    assert "DATABASE_URL (the administrator's DSN) is not set" in _error_line(out)
    assert not (tmp_path / ".charter").exists()  # no embedded PostgreSQL was started

    code, out, err = await run(
        clean_env(tmp_path, DATABASE_URL=admin_dsn), "-m", "charter_cli", "migrate", cwd=tmp_path
    )
    assert code == 0, out + err
    assert "is up to date" in out


async def test_run_reports_a_failed_run_at_once(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, worker: Worker
) -> None:
    # A tenant with no books and no credentials: the read stage fails for good.
    child = clean_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_TASK_QUEUE=TASK_QUEUE,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    began = time.monotonic()
    code, out, err = await run(
        child, "-m", "charter_cli", "run", "nobody", "payables", cwd=tmp_path
    )
    elapsed = time.monotonic() - began
    assert code == 2, out + err
    assert "started charter/nobody/payables/" in out
    failure = out.splitlines()[-1]
    assert failure.startswith("error: run charter/nobody/payables/") and " failed: " in failure
    assert elapsed < 30  # not the 60 s settle timeout


@pytest.mark.parametrize("missing", ["TEMPORAL_ADDRESS"])
async def test_temporal_setup_needs_an_address(tmp_path: Path, missing: str) -> None:
    code, out, _ = await run(
        clean_env(tmp_path), "-m", "charter_cli", "temporal", "setup", cwd=tmp_path
    )
    assert code == 2
    assert "no Temporal address" in _error_line(out) and missing in out


async def test_json_output_of_run_and_exceptions(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, worker: Worker, tenant: str
) -> None:
    child = clean_env(
        tmp_path,
        DATABASE_URL=admin_dsn,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        CHARTER_TASK_QUEUE=TASK_QUEUE,
        CHARTER_STATE_DIR=str(tmp_path / "state"),
    )
    argv = ("-m", "charter_cli", "run", tenant, "payables", "--focus", "INV-1043", "--json")
    code, out, err = await run(child, *argv, cwd=tmp_path)
    assert code == 0, out + err
    started = json.loads(out)  # nothing but the JSON document on stdout
    assert started["workflow_id"].startswith(f"charter/{tenant}/payables/")
    (proposal,) = started["state"]["proposals"]
    assert proposal["status"] == "awaiting_decision" and proposal["proposal"]["amount"] == "2300.00"
    exception_id = proposal["exception_id"]

    code, out, err = await run(
        child, "-m", "charter_cli", "exceptions", "list", "-t", tenant, "--json", cwd=tmp_path
    )
    assert code == 0, out + err
    assert [row["exception_id"] for row in json.loads(out)] == [exception_id]

    code, out, err = await run(
        child,
        "-m",
        "charter_cli",
        "exceptions",
        "show",
        exception_id,
        "-t",
        tenant,
        "--json",
        cwd=tmp_path,
    )
    assert code == 0, out + err
    shown = json.loads(out)
    assert shown["exception_id"] == exception_id and shown["status"] == "open"
