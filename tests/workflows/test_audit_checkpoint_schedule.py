"""Signed audit checkpoints on a Temporal Schedule, end to end: `charter schedule checkpoint`
run as a user runs it, a real worker signing with its own key, the real database, and sinks a
database administrator cannot write: a file, and an S3-compatible object store (moto's
server, run as a real process)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from temporalio.client import Client, WorkflowExecution, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities import Deps
from activities.checkpoint import CheckpointActivities
from charter.audit.checkpoints import Checkpoint, sign, verified_anchor
from charter.audit.sinks import S3Sink, SinkUnavailable, sink_for
from charter.config.settings import Settings
from charter.crypto.codec import EncryptionCodec, default_payload_keyring
from charter.reasoners import OfflineReasoner
from charter.services.audit_verification import SigningKeySource
from charter.storage import Database, audit_trail
from charter_cli import build_parser
from schemas import (
    AuditCheckpointInput,
    AuditCheckpointResult,
    audit_schedule_id_for,
    audit_scheduled_workflow_id_prefix,
)
from schemas.errors import ErrorType
from tests.support import tamper
from tests.support.cli import run_main
from tests.support.history_scan import is_never_encoded, payloads
from tests.support.polling import eventually
from tests.support.processes import free_port
from tests.support.running import chain_ok, record_history
from tests.support.tenants import new_tenant
from tests.support.vault import session_vault
from worker import build_worker
from workflows import AuditCheckpoint


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.private_bytes_raw()).decode()


def signing_deps(db: Database, key: Ed25519PrivateKey, tmp_path: Path) -> Deps:
    """What `worker.py` gives the activities: the key from its configuration (here the
    environment's form), a key file that does not exist and is never created."""
    return Deps(
        credentials=session_vault(),
        db=db,
        reasoner=OfflineReasoner(),
        audit_signing=SigningKeySource(SecretStr(key_b64(key)), tmp_path / "no-such.key"),
    )


@pytest.fixture
async def queue(
    client: Client, db: Database, key: Ed25519PrivateKey, tmp_path: Path
) -> AsyncIterator[str]:
    """A worker of its own, signing with `key` from its configuration (as `worker.py` does)."""
    name = f"ckpt-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, signing_deps(db, key, tmp_path), name):
        yield name


async def grow(db: Database, tenant: str, n: int) -> None:
    for i in range(n):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(conn, tenant, "observed", {"i": i}, actor="test")


async def head_seq(db: Database, tenant: str) -> int:
    return await chain_ok(db, tenant)  # every seq from 1: the head's seq is the count


async def plaintext_of(handle: WorkflowHandle[AuditCheckpoint, AuditCheckpointResult]) -> str:
    """Every payload of the run's history, decrypted: what the codec's key holder can read."""
    codec = EncryptionCodec(default_payload_keyring(Settings()))
    history = await handle.fetch_history()
    found = [codec.decrypt(p).data for where, p in payloads(history) if not is_never_encoded(where)]
    return b"".join(found).decode("utf-8", "replace")


async def test_a_checkpoint_schedule_signs_verified_heads_into_a_file(
    tmp_path: Path,
    admin_dsn: str,
    env: WorkflowEnvironment,
    client: Client,
    db: Database,
    admin: asyncpg.Connection,
    tenant: str,
    key: Ed25519PrivateKey,
    queue: str,
) -> None:
    await grow(db, tenant, 3)
    sink = tmp_path / "outside-the-db" / "checkpoints.jsonl"
    child: dict[str, str | None] = {
        "DATABASE_URL": admin_dsn,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "CHARTER_TASK_QUEUE": queue,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
        "CHARTER_AUDIT_SIGNING_KEY": None,
        "CHARTER_AUDIT_CHECKPOINTS": None,
    }

    async def charter(*argv: str, environ: dict[str, str | None] = child) -> tuple[int, str]:
        ran = await run_main(*argv, env=environ)  # as `main` runs it, in this process
        return ran.code, ran.output

    target = ("--tenant", tenant, "--name", "hourly")
    schedule_id = audit_schedule_id_for(tenant, "hourly")
    code, out = await charter(
        "schedule", "checkpoint", "create", *target, "--to", str(sink), "--every", "1h"
    )
    assert code == 0 and f"created {schedule_id}" in out, out
    code, out = await charter(
        "schedule", "checkpoint", "create", *target, "--to", str(sink), "--every", "1h"
    )
    assert code == 2 and "exists" in out

    prefix = audit_scheduled_workflow_id_prefix(tenant, "hourly")

    # Runs, not ids: the id ends in the scheduled second, and two triggers within one second
    # start two runs under one id.
    async def started(n: int) -> list[WorkflowExecution] | None:
        query = f"WorkflowId STARTS_WITH '{prefix}'"
        runs = [w async for w in client.list_workflows(query)]
        return runs if len(runs) >= n else None

    assert (await charter("schedule", "checkpoint", "trigger", *target))[0] == 0
    (first,) = await eventually(lambda: started(1), timeout=30)
    assert re.fullmatch(re.escape(prefix) + r"-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.id), first
    handle = client.get_workflow_handle_for(AuditCheckpoint.run, first.id, run_id=first.run_id)
    result = await handle.result()
    await record_history(handle, "audit_checkpoint_scheduled")

    # A verified head, signed by the worker's key, landed outside the database.
    head = await head_seq(db, tenant)
    (line,) = sink.read_text().splitlines()
    checkpoint = Checkpoint.model_validate_json(line)
    anchor = verified_anchor(key.public_key(), checkpoint)
    assert (anchor.tenant_id, anchor.seq) == (tenant, head)
    assert [(c.tenant_id, c.seq, c.hash) for c in result.checkpoints] == [
        (tenant, head, checkpoint.hash)
    ]
    assert result.sink == str(sink) and result.tenants_verified == 1
    # The key is in neither the history (decrypted) nor the database.
    secret = key_b64(key)
    plaintext = await plaintext_of(handle)
    assert tenant in plaintext and secret not in plaintext
    assert not await admin.fetchval(
        "SELECT count(*) FROM charter.audit_entries WHERE snapshot::text LIKE '%' || $1 || '%'",
        secret,
    )
    # The CLI's verify agrees with what the worker signed.
    code, out = await charter(
        "audit",
        "verify",
        "--tenant",
        tenant,
        "--checkpoints",
        str(sink),
        environ={**child, "CHARTER_AUDIT_SIGNING_KEY": secret},
    )
    assert code == 0 and "verified" in out, out

    code, out = await charter("schedule", "list", "--tenant", tenant, "--json")
    (row,) = json.loads(out)
    assert row["id"] == schedule_id and row["kind"] == "audit-checkpoint"
    assert (
        row["to"] == str(sink)
        and row["agent"] is None
        and row["every"] == ["PT1H"]
        and row["cron"] == []
    )
    code, out = await charter("schedule", "checkpoint", "list", "--json")
    assert schedule_id in [r["id"] for r in json.loads(out)]

    # Someone with the database's keys rewrites entry 2 and recomputes every hash after it:
    # the chain is consistent again, but not with the checkpoint outside their reach.
    await tamper.rewrite_and_recompute(admin, tenant, 2)
    assert (await charter("schedule", "checkpoint", "trigger", *target))[0] == 0
    runs = await eventually(lambda: started(2), timeout=30)
    second = next(r for r in runs if r.run_id != first.run_id)
    with pytest.raises(WorkflowFailureError) as exc:
        await client.get_workflow_handle_for(
            AuditCheckpoint.run, second.id, run_id=second.run_id
        ).result()
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.AUDIT_CHAIN_BROKEN
    assert tenant in cause.message and cause.non_retryable
    assert len(sink.read_text().splitlines()) == 1  # nothing signed over the damage

    assert (await charter("schedule", "checkpoint", "pause", *target, "--note", "audit"))[0] == 0
    code, out = await charter("schedule", "list", "--tenant", tenant, "--json")
    assert json.loads(out)[0]["paused"] is True and json.loads(out)[0]["note"] == "audit"
    assert (await charter("schedule", "checkpoint", "unpause", *target))[0] == 0
    assert (await charter("schedule", "checkpoint", "delete", *target))[0] == 0
    code, out = await charter("schedule", "checkpoint", "delete", *target)
    assert code == 2 and f"no schedule {schedule_id}" in out


async def test_bad_checkpoint_schedules_are_one_line(tmp_path: Path) -> None:
    # No database and no Temporal configured: each is refused before either is needed.
    nowhere: dict[str, str | None] = {
        "DATABASE_URL": None,
        "TEMPORAL_ADDRESS": None,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
    }
    for argv, said in (
        (["--to", "ftp://host/x", "--every", "1h"], "file path, file:// or s3://"),
        (["--to", "s3://AKIA:secret@bucket/x", "--every", "1h"], "carries no credentials"),
        (["--to", "/x", "--every", "1h", "--tenant", "Not A Tenant"], "invalid schedule"),
        (["--every", "1h"], "--to"),
    ):
        ran = await run_main("schedule", "checkpoint", "create", *argv, env=nowhere)
        assert ran.code == 2 and said in ran.output, (argv, ran)


# -- the object store ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server as a real process on a free port."""
    port = free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the process (and so the worker) reaches it through the standard AWS
    configuration, as a production worker would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"audit-{uuid.uuid4().hex[:8]}"

    async def created() -> bool:
        try:
            await asyncio.to_thread(boto3.client("s3").create_bucket, Bucket=name)
        except Exception:  # the server is still starting
            return False
        return True

    await eventually(created, timeout=30, interval=0.3)
    return name


def keys_in(bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


async def test_an_object_store_gets_one_immutable_object_per_checkpoint(
    admin_dsn: str,
    client: Client,
    db: Database,
    admin: asyncpg.Connection,
    tenant: str,
    key: Ed25519PrivateKey,
    queue: str,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = f"s3://{bucket}/charter/checkpoints"
    req = AuditCheckpointInput(sink=location, tenant_id=tenant)

    async def checkpoint_run() -> AuditCheckpointResult:
        return await client.execute_workflow(
            AuditCheckpoint.run, req, id=f"ckpt-{uuid.uuid4().hex[:8]}", task_queue=queue
        )

    first = await checkpoint_run()
    await grow(db, tenant, 2)
    second = await checkpoint_run()
    assert first.sink == f"s3://{bucket}/charter/checkpoints/"
    keys = keys_in(bucket)
    assert len(keys) == 2
    for object_key, result in zip(keys, [first, second], strict=True):
        (head,) = result.checkpoints
        pattern = (
            rf"charter/checkpoints/{tenant}/{head.seq:012d}-\d{{8}}T\d{{6}}Z-{head.hash}\.json"
        )
        assert re.fullmatch(pattern, object_key), object_key
        body = boto3.client("s3").get_object(Bucket=bucket, Key=object_key)["Body"].read()
        assert verified_anchor(key.public_key(), Checkpoint.model_validate_json(body)).seq == (
            head.seq
        )
    assert second.checkpoints[0].seq == await head_seq(db, tenant)
    # What a verification anchors on: each tenant's newest, found without naming the tenant.
    (newest,) = await asyncio.to_thread(sink_for(location).prior, None)
    assert (newest.tenant_id, newest.seq) == (tenant, second.checkpoints[0].seq)

    # The CLI verifies the database against the object store, with the same key (and this
    # session's Temporal: without an address it would start a stack of its own).
    monkeypatch.setenv("CHARTER_AUDIT_SIGNING_KEY", key_b64(key))
    monkeypatch.setenv("CHARTER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    args = build_parser().parse_args(
        ["audit", "verify", "--tenant", tenant, "--checkpoints", location]
    )
    assert await args.func(args) == 0

    # Never overwritten: the same checkpoint again is a no-op (a retried write), a different
    # one under an existing key is refused and the object stays as it was.
    sink = sink_for(location)
    assert isinstance(sink, S3Sink)
    signed = Checkpoint.model_validate_json(
        boto3.client("s3").get_object(Bucket=bucket, Key=keys[1])["Body"].read()
    )
    await asyncio.to_thread(sink.append, [signed])
    forged = sign(Ed25519PrivateKey.generate(), signed.tenant_id, signed.seq, signed.hash)
    forged = forged.model_copy(update={"created_at": signed.created_at})
    with pytest.raises(SinkUnavailable):
        await asyncio.to_thread(sink.append, [forged])
    assert keys_in(bucket) == keys
    body = boto3.client("s3").get_object(Bucket=bucket, Key=keys[1])["Body"].read()
    assert Checkpoint.model_validate_json(body) == signed

    # The newest checkpoint in the store catches a rewrite the chain alone would not show.
    await tamper.rewrite_and_recompute(admin, tenant, 2)
    with pytest.raises(WorkflowFailureError) as exc:
        await checkpoint_run()
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.AUDIT_CHAIN_BROKEN
    assert len(keys_in(bucket)) == 2


async def test_an_unreachable_store_is_retryable(
    db: Database,
    tenant: str,
    key: Ed25519PrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    activities = CheckpointActivities(signing_deps(db, key, tmp_path))
    with pytest.raises(ApplicationError) as exc:
        await activities.checkpoint_audit(
            AuditCheckpointInput(sink="s3://nowhere/x", tenant_id=tenant)
        )
    assert exc.value.type == ErrorType.AUDIT_SINK_UNAVAILABLE and not exc.value.non_retryable


async def test_a_worker_without_a_key_refuses_and_never_makes_one(
    db: Database, tenant: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "audit-signing.key"
    activities = CheckpointActivities(
        Deps(
            credentials=session_vault(),
            db=db,
            reasoner=OfflineReasoner(),
            audit_signing=SigningKeySource(None, key_file),
        )
    )
    sink = tmp_path / "checkpoints.jsonl"
    with pytest.raises(ApplicationError) as exc:
        await activities.checkpoint_audit(AuditCheckpointInput(sink=str(sink), tenant_id=tenant))
    assert exc.value.type == ErrorType.AUDIT_CHECKPOINT_INVALID and exc.value.non_retryable
    assert not key_file.exists() and not sink.exists()
    assert os.listdir(tmp_path) == []


async def test_every_tenant_a_broken_one_fails_the_run_and_the_others_are_signed(
    db: Database,
    admin: asyncpg.Connection,
    admin_dsn: str,
    tenant: str,
    key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    broken = await new_tenant(db, admin, admin_dsn)
    await grow(db, broken, 3)
    bad = len(await tamper.chain(admin, broken))  # one of ours: {"i": 2}
    await tamper.flip_byte(admin, broken, bad)
    sink = tmp_path / "checkpoints.jsonl"
    activities = CheckpointActivities(signing_deps(db, key, tmp_path))
    with pytest.raises(ApplicationError) as exc:
        await activities.checkpoint_audit(AuditCheckpointInput(sink=str(sink)))
    assert exc.value.type == ErrorType.AUDIT_CHAIN_BROKEN and exc.value.non_retryable
    assert f"{broken} at seq {bad}" in exc.value.message
    signed = {Checkpoint.model_validate_json(line).tenant_id for line in sink.read_text().split()}
    # Every other tenant of the database got its checkpoint; the broken one did not.
    assert tenant in signed and broken not in signed
