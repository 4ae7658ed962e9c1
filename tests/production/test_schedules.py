"""`charter schedule`: an agent on a Temporal Schedule, with deterministic ids, overlaps
skipped, and pause / unpause / delete."""

from __future__ import annotations

import json
import re
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas import schedule_id_for, scheduled_workflow_id_prefix
from tests.support.cli import run_main
from tests.support.polling import eventually
from tests.support.queues import TASK_QUEUE
from workflows import AgentLoop


def _settings(tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment) -> dict[str, str]:
    return {
        "DATABASE_URL": admin_dsn,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "CHARTER_TASK_QUEUE": TASK_QUEUE,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
    }


async def test_schedule_lifecycle_and_overlap_skip(
    tmp_path: Path,
    admin_dsn: str,
    env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    tenant: str,
) -> None:
    settings = _settings(tmp_path, admin_dsn, env)

    async def charter(*argv: str) -> tuple[int, str]:
        # In this process, as the CLI's `main` runs it: a child per command (and `list` is
        # polled) cost seconds of imports each.
        ran = await run_main("schedule", *argv, env=settings)
        assert ran.err == "", ran.err
        return ran.code, ran.out

    target = (tenant, "payables", "--name", "nightly")
    schedule_id = schedule_id_for(tenant, "payables", "nightly")
    # INV-1043 escalates: its run waits on a human, so a second tick would overlap it.
    code, out = await charter("create", *target, "--every", "1d", "--focus", "INV-1043")
    assert code == 0 and f"created {schedule_id}" in out
    code, out = await charter("create", *target, "--every", "1d")
    assert code == 2 and "exists" in out

    assert (await charter("trigger", *target))[0] == 0
    prefix = scheduled_workflow_id_prefix(tenant, "payables", "nightly")

    async def started() -> list[str]:
        return [w.id async for w in client.list_workflows(f"WorkflowId STARTS_WITH '{prefix}'")]

    (first,) = await eventually(started)
    # The scheduled time completes the id: one id per tick, no business data in it.
    assert re.fullmatch(re.escape(prefix) + r"-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first), first
    handle = client.get_workflow_handle_for(AgentLoop.run, first)

    async def waiting() -> bool:
        return (await handle.query(AgentLoop.state)).stage == "awaiting_decision"

    await eventually(waiting)
    assert (await charter("trigger", *target))[0] == 0  # overlaps the waiting run: skipped

    async def listed() -> dict[str, object] | None:
        code, out = await charter("list", "--tenant", tenant, "--json")
        assert code == 0
        rows = json.loads(out)
        return rows[0] if rows and rows[0]["skipped_overlaps"] == 1 else None

    row = await eventually(listed, timeout=30)
    assert row["id"] == schedule_id and row["every"] == ["P1D"]
    assert row["runs"] == 1 and row["paused"] is False
    assert await started() == [first]

    assert (await charter("pause", *target, "--note", "month-end freeze"))[0] == 0
    code, out = await charter("list", "--tenant", tenant, "--json")
    assert json.loads(out)[0]["paused"] is True and json.loads(out)[0]["note"] == "month-end freeze"
    assert (await charter("unpause", *target))[0] == 0
    code, out = await charter("list", "--tenant", tenant, "--json")
    assert json.loads(out)[0]["paused"] is False

    assert (await charter("delete", *target))[0] == 0
    code, out = await charter("delete", *target)
    assert code == 2 and f"no schedule {schedule_id}" in out
    # Deleting the schedule leaves the run it started alone.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate("test over")


async def test_bad_schedule_arguments_are_one_line() -> None:
    ran = await run_main("schedule", "create", "acme", "payables", "--every", "soon")
    assert ran.code == 2 and "is not a duration like 30s" in ran.err
    assert "Traceback" not in ran.err


async def test_a_cron_schedule_lists_its_expression(
    tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment, client: Client, tenant: str
) -> None:
    """The server compiles cron into calendars; the list still shows the expression given."""
    settings = _settings(tmp_path, admin_dsn, env)
    target = (tenant, "payables", "--name", "weekdays")
    created = await run_main("schedule", "create", *target, "--cron", "0 9 * * 1-5", env=settings)
    assert created.code == 0, created.out + created.err
    try:
        listed = await run_main("schedule", "list", "--tenant", tenant, "--json", env=settings)
        [row] = json.loads(listed.out)
        assert row["cron"] == ["0 9 * * 1-5"] and row["every"] == []
    finally:
        await run_main("schedule", "delete", *target, env=settings)
