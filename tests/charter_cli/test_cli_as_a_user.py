"""The `charter` CLI and the demo as a user runs them.

They talk to this test session's PostgreSQL and Temporal through the same environment
variables a user would set (DATABASE_URL, TEMPORAL_ADDRESS). Commands run through the CLI's
`main` in this process (a child per command cost seconds of imports); the demo runs as a
child process, exactly as `make demo` runs it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from charter.storage import Database
from charter_cli import GROUPS, build_parser
from schemas import RunState
from tests.support.cli import run_main
from tests.support.processes import run
from tests.support.queues import TASK_QUEUE
from tests.support.running import chain_ok, start, until_stage
from workflows import AgentLoop


@pytest.fixture
def cli_env(admin_dsn: str, env: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": admin_dsn,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "CHARTER_TASK_QUEUE": TASK_QUEUE,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
    }


async def charter(env: dict[str, str], *argv: str) -> tuple[int, str]:
    ran = await run_main(*argv, env=env)
    return ran.code, ran.output


def test_every_command_has_help() -> None:
    parser = build_parser()
    assert len(GROUPS) >= 5
    commands: list[list[str]] = []

    def walk(p: object, prefix: list[str]) -> None:
        for action in getattr(p, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    commands.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(parser, [])
    assert ["decide"] in commands and ["audit", "verify"] in commands
    for argv in commands:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([*argv, "--help"])
        assert exc.value.code == 0, argv


async def _escalated(client: Client, tenant: str) -> tuple[WorkflowHandle[Any, Any], str]:
    """A payables run on INV-1043 awaiting a decision, and its exception."""
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    exception_id = state.proposals[0].exception_id
    assert exception_id is not None
    return handle, exception_id


async def test_decide_from_the_cli(
    cli_env: dict[str, str], client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle, exception_id = await _escalated(client, tenant)

    code, out = await charter(cli_env, "exceptions", "list", "--tenant", tenant)
    assert code == 0 and exception_id in out and "Bluebird" in out
    code, out = await charter(cli_env, "exceptions", "show", exception_id, "--tenant", tenant)
    assert code == 0 and "NOT verified" in out and "outside bounds" in out

    # Refusals: a viewer (who has no signing key here, so cannot even sign), an unknown
    # exception, a malformed amount. Nothing changes.
    code, out = await charter(
        cli_env, "decide", exception_id, "approve", "--tenant", tenant, "--as", "leo"
    )
    assert code == 2 and "'leo' has no signing key" in out and "members enroll leo" in out
    code, out = await charter(
        cli_env, "decide", "ex-0000000000", "approve", "--tenant", tenant, "--as", "maya"
    )
    assert code == 2 and "no exception" in out
    code, out = await charter(
        cli_env,
        "decide",
        exception_id,
        "approve",
        "--tenant",
        tenant,
        "--as",
        "maya",
        "--amend",
        "--max-amount",
        "lots",
    )
    assert code == 2 and "not a number" in out
    current: RunState = await handle.query(AgentLoop.state)
    assert current.proposals[0].status == "awaiting_decision"

    code, out = await charter(
        cli_env,
        "decide",
        exception_id,
        "approve",
        "--tenant",
        tenant,
        "--as",
        "sam",
        "--reason",
        "brand studio",
        "--amend",
        "--max-amount",
        "2500",
    )
    assert code == 0 and "approved" in out and "amended to v2" in out, out
    # What it signed, it showed: the parameters, before the receipt.
    assert "approves: schedule_payment $2,300.00 to Bluebird Design Studio" in " ".join(
        out.split()
    ), out
    result = await handle.result()
    assert result.proposals[0].status == "executed"

    code, out = await charter(cli_env, "audit", "verify", "--tenant", tenant)
    assert code == 0 and "verified" in out
    await chain_ok(db, tenant)


async def test_decide_with_a_tolerance_shows_it_signs_it_and_holds_through_a_move(
    cli_env: dict[str, str], client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle, exception_id = await _escalated(client, tenant)
    decide = ("decide", exception_id, "approve", "--tenant", tenant, "--as", "maya")
    for flags, refusal in [
        (["--tolerance", "invoice.amount"], "is not FACT=FRACTION"),
        (["--tolerance", "invoice.amount=lots"], "is not a number"),
        (["--tolerance", "invoice.amount=5%", "--tolerance", "invoice.amount=1%"], "twice"),
        (["--tolerance", "bank.balance=5%"], "invalid decision: tolerance"),
        (["--tolerance", "invoice.amount=150%"], "less than or equal to 1"),
    ]:
        code, out = await charter(cli_env, *decide, *flags)
        assert code == 2 and refusal in out and len(out.strip().splitlines()) == 1, out
    code, out = await charter(
        cli_env,
        "decide",
        exception_id,
        "reject",
        "--tenant",
        tenant,
        "--as",
        "maya",
        "--tolerance",
        "invoice.amount=5%",
    )
    assert code == 2 and "--tolerance only goes with approve" in out
    # The books move by 2% after the exception opened: within what the approver allows.
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "UPDATE charter.invoices SET amount = 2346 WHERE tenant_id = $1 AND "
            "invoice_id = 'INV-1043'",
            tenant,
        )
    code, out = await charter(
        cli_env,
        *decide,
        "--tolerance",
        "invoice.amount=5%",
        "--tolerance",
        "invoice.outstanding=0.05",
    )
    assert code == 0, out
    shown = " ".join(out.split())
    assert (
        "holding while invoice.amount moves by at most 5%; invoice.outstanding moves by at "
        "most 5%" in shown
    ), out
    result = await handle.result()
    assert result.proposals[0].status == "executed", result.proposals[0].failure
    assert result.proposals[0].exception_id == exception_id


async def test_audit_checkpoint_to_a_file_url_and_a_bad_location(
    cli_env: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    sink = tmp_path / "signed" / "checkpoints.jsonl"
    code, out = await charter(
        cli_env, "audit", "checkpoint", "--tenant", tenant, "--checkpoints", sink.as_uri()
    )
    said = " ".join(out.split())  # the table's title wraps a long path at the table's width
    assert code == 0 and f"signed checkpoints -> {sink}" in said and tenant in out, out
    assert len(sink.read_text().splitlines()) == 1
    code, out = await charter(
        cli_env, "audit", "verify", "--tenant", tenant, "--checkpoints", sink.as_uri()
    )
    assert code == 0 and "verified" in out, out
    code, out = await charter(cli_env, "audit", "checkpoint", "--checkpoints", "gopher://x/y")
    assert code == 2 and "file path, file:// or s3://" in out and "Traceback" not in out, out


async def test_run_from_the_cli_and_duplicate_trigger(
    cli_env: dict[str, str], worker: Worker, tenant: str
) -> None:
    args = ("run", tenant, "payables", "--trigger", "cli-dup", "--focus", "INV-1041")
    code, out = await charter(cli_env, *args)
    assert code == 0 and "executed" in out and "INV-1041" in out, out
    code, out = await charter(cli_env, *args)
    assert code == 2 and "already ran" in out


async def test_the_demo_runs_end_to_end(cli_env: dict[str, str], tmp_path: Path) -> None:
    # Its own worker on its own queue, so this is exactly what `make demo` runs.
    demo = {**os.environ, **cli_env, "CHARTER_TASK_QUEUE": "charter-demo", "COLUMNS": "200"}
    code, out, err = await run(demo, "-m", "charter_cli", "demo", cwd=tmp_path, timeout=180)
    out += err
    assert code == 0, out
    for expected in (
        "executed",
        "escalated",
        "denied",
        "deny-already-paid",
        "constitution amended to v2",
        "allowed by amend-ex-",
        "verified",
        "not an authorised approver for tenant 'acme'",
        "limit_exceeded",  # the day's autonomous cap, in run 3
        "Demo finished",
    ):
        assert expected in out, expected
    assert "BROKEN" not in out
    # The audit chain heads are printed in full, as an auditor compares them.
    assert len(re.findall(r"\b[0-9a-f]{64}\b", out)) >= 2


async def test_an_unreadable_reply_exception_is_dismissed_not_decided(
    cli_env: dict[str, str], db: Database, tenant: str
) -> None:
    """An unreadable reasoner reply escalates with no proposal and its run ends; an approver
    reads it and closes it. Nothing can be approved, and only approvers may dismiss."""
    from datetime import UTC, datetime, timedelta

    from charter.storage import runs

    async with db.tenant(tenant) as conn:
        await runs.open_exception(
            conn,
            tenant_id=tenant,
            exception_id="ex-00000000p0",
            workflow_id=f"charter/{tenant}/payables/t-unreadable",
            proposal_id="p0",
            agent="payables",
            context={
                "kind": "reasoning_failure",
                "tenant_id": tenant,
                "agent": "payables",
                "failure": {"message": "no tool call"},
            },
            expires_at=datetime.now(UTC) + timedelta(days=7),
        )
    before = await chain_ok(db, tenant)
    code, out = await charter(
        cli_env, "decide", "ex-00000000p0", "approve", "--tenant", tenant, "--as", "maya"
    )
    assert code == 2 and "no proposal" in out and "dismiss" in out
    code, out = await charter(
        cli_env, "exceptions", "dismiss", "ex-00000000p0", "--tenant", tenant, "--as", "leo"
    )
    assert code == 2 and "not an authorised approver" in out
    assert await chain_ok(db, tenant) == before
    code, out = await charter(
        cli_env,
        "exceptions",
        "dismiss",
        "ex-00000000p0",
        "--tenant",
        tenant,
        "--as",
        "maya",
        "--reason",
        "re-ran the agent",
    )
    assert code == 0 and "dismissed" in out, out
    async with db.tenant(tenant) as conn:
        row = await runs.get_exception(conn, tenant, "ex-00000000p0")
    assert row is not None and row["status"] == "rejected"
    assert await chain_ok(db, tenant) == before + 1
    code, out = await charter(
        cli_env, "exceptions", "dismiss", "ex-00000000p0", "--tenant", tenant, "--as", "maya"
    )
    assert code == 2 and "not open" in out


async def test_members_add_enroll_decide_and_revoke(
    cli_env: dict[str, str], client: Client, worker: Worker, tenant: str
) -> None:
    """Members and keys from the CLI: a new approver is enrolled and decides with a signed
    statement; once their keys are revoked for cause, their signature counts for nothing."""
    code, out = await charter(
        cli_env,
        "members",
        "add",
        "ola",
        "--tenant",
        tenant,
        "--name",
        "Ola [b]N[/b]",
        "--roles",
        "approver",
    )
    assert code == 0, out
    code, out = await charter(cli_env, "members", "add", "ola", "--tenant", tenant, "--name", "x")
    assert code == 2 and "already an active member" in out
    code, out = await charter(cli_env, "members", "enroll", "ola", "--tenant", tenant)
    assert code == 0 and "enrolled ola" in out, out
    code, out = await charter(cli_env, "members", "set-slack", "ola", "U0OLA", "--tenant", tenant)
    assert code == 0, out
    code, out = await charter(cli_env, "members", "front-door", "slack", "--tenant", tenant)
    assert code == 0 and "registered the slack front door" in out, out
    code, out = await charter(cli_env, "members", "list", "--tenant", tenant)
    assert code == 0 and "Ola [b]N[/b]" in out and "U0OLA" in out and "mk-" in out, out
    assert "(slack front door)" in out
    code, out = await charter(cli_env, "members", "revoke", "--tenant", tenant)
    assert code == 2 and "name a member, or a key with --key" in out

    handle, exception_id = await _escalated(client, tenant)
    code, out = await charter(
        cli_env, "members", "revoke", "ola", "--tenant", tenant, "--for-cause", "--keys-only"
    )
    assert code == 0 and "revoked for cause" in out, out
    code, out = await charter(
        cli_env, "decide", exception_id, "approve", "--tenant", tenant, "--as", "ola"
    )
    assert code == 2 and "decision refused" in out and "not valid" in out, out
    code, out = await charter(
        cli_env, "decide", exception_id, "approve", "--tenant", tenant, "--as", "maya"
    )
    assert code == 0 and "approved" in out, out
    assert (await handle.result()).proposals[0].status == "executed"
