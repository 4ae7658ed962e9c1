"""`charter audit checkpoint | verify | export` end to end, and heads anchored in Temporal."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from charter.audit.checkpoints import Checkpoint
from charter.services.audit_verification import verify_tenants
from charter.storage import Database, audit_trail
from charter_cli._common import CliError
from charter_cli.audit import temporal_anchors
from schemas import AgentRunInput
from starter import start_run
from tests.support import tamper
from tests.support.cli import charter
from tests.support.polling import eventually
from tests.support.queues import TASK_QUEUE

pytestmark = pytest.mark.db


async def grow(db: Database, tenant: str, n: int) -> None:
    for i in range(n):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(conn, tenant, "observed", {"i": i}, actor="test")


async def test_checkpoint_verify_export(
    cli_env: Path,
    db: Database,
    admin: asyncpg.Connection,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await grow(db, tenant, 6)
    assert await charter("audit", "checkpoint", "--tenant", tenant) == 0
    key_file = cli_env / "audit-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    lines = (cli_env / "audit-checkpoints.jsonl").read_text().splitlines()
    assert len(lines) == 1 and Checkpoint.model_validate_json(lines[0]).tenant_id == tenant
    # The key is nowhere in the database.
    secret = key_file.read_text().strip()
    assert not await admin.fetchval(
        "SELECT count(*) FROM charter.audit_entries WHERE snapshot::text LIKE '%' || $1 || '%'",
        secret,
    )
    assert await charter("audit", "verify", "--tenant", tenant) == 0

    export = cli_env / "export.jsonl"
    assert await charter("audit", "export", "--tenant", tenant, "--out", str(export)) == 0
    exported = [json.loads(line) for line in export.read_text().splitlines()]
    assert [e["seq"] for e in exported] == list(range(1, len(exported) + 1))
    assert await charter("audit", "verify", "--tenant", tenant, "--export", str(export)) == 0

    await tamper.rewrite_and_recompute(admin, tenant, 3)
    capsys.readouterr()
    assert await charter("audit", "verify", "--tenant", tenant) == 1
    assert "rewritten" in capsys.readouterr().out
    # A checkpoint that does not verify is a failure, never silently skipped.
    forged = Checkpoint.model_validate_json(lines[0]).model_copy(update={"hash": "0" * 64})
    with (cli_env / "audit-checkpoints.jsonl").open("a") as f:
        f.write(forged.model_dump_json() + "\n")
    assert await charter("audit", "verify", "--tenant", tenant, "--export", str(export)) == 1
    assert "signature does not verify" in capsys.readouterr().out


async def test_checkpoint_refuses_a_broken_chain(
    cli_env: Path, db: Database, admin: asyncpg.Connection, tenant: str
) -> None:
    await grow(db, tenant, 4)
    await tamper.flip_byte(admin, tenant, 3)
    assert await charter("audit", "checkpoint", "--tenant", tenant) == 1
    assert not (cli_env / "audit-checkpoints.jsonl").exists()


async def test_unreadable_key_file_is_refused(cli_env: Path, db: Database, tenant: str) -> None:
    key_file = cli_env / "audit-signing.key"
    key_file.write_text("x")
    key_file.chmod(0o644)
    with pytest.raises(CliError, match="readable by group or others"):
        await charter("audit", "checkpoint", "--tenant", tenant)


async def test_temporal_results_anchor_the_chain(
    client: Client, worker: Worker, db: Database, admin: asyncpg.Connection, tenant: str
) -> None:
    run = AgentRunInput(
        tenant_id=tenant, agent="payables", trigger=f"t-{uuid.uuid4().hex[:8]}", focus=["INV-1041"]
    )
    result = await (await start_run(client, run, task_queue=TASK_QUEUE)).result()

    async def listed() -> list[object]:
        return await temporal_anchors(client, tenant)  # type: ignore[return-value]

    anchors = await eventually(listed)
    assert [(a.seq, a.hash) for a in anchors] == [(result.audit_head.seq, result.audit_head.hash)]
    (report,) = await verify_tenants(db, [tenant], {tenant: anchors})
    assert report.ok and report.anchors_checked == 1

    await tamper.rewrite_and_recompute(admin, tenant, 2)
    (report,) = await verify_tenants(db, [tenant], {tenant: await temporal_anchors(client, tenant)})
    assert not report.ok and report.first_bad_seq == result.audit_head.seq
    assert "Temporal result of" in (report.problem or "")


async def test_verify_refuses_a_named_checkpoints_file_that_is_missing(
    cli_env: Path, db: Database, tenant: str
) -> None:
    await grow(db, tenant, 2)
    missing = cli_env / "nowhere" / "checkpoints.jsonl"
    with pytest.raises(CliError, match="no checkpoints file at"):
        await charter("audit", "verify", "--tenant", tenant, "--checkpoints", str(missing))


async def test_a_snapshot_that_is_not_an_object_is_named_with_its_tenant_and_seq(
    cli_env: Path,
    db: Database,
    admin: asyncpg.Connection,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await grow(db, tenant, 2)
    seq = max(e.seq for e in await tamper.chain(admin, tenant))
    await tamper.set_snapshot(admin, tenant, seq, "[1, 2]")
    capsys.readouterr()
    assert await charter("audit", "verify", "--tenant", tenant) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert tenant in out and str(seq) in out
