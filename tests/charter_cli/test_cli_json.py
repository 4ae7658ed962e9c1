"""`--json` on the CLI's list and show commands: one JSON document on standard output, with
the fields a script reads, and never a secret."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from charter.config.settings import redact_dsn
from charter.storage import Database
from charter.storage import credential_vault as creds
from charter_cli import build_parser
from tests.support.cli import operator_env, run_main
from tests.support.queues import TASK_QUEUE
from tests.support.vault import session_vault

SECRET = "sk-live-" + "s3cr3t" * 6


async def test_every_list_and_show_command_prints_json(
    tmp_path: Path,
    admin_dsn: str,
    env: WorkflowEnvironment,
    db: Database,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with db.tenant(tenant) as conn:
        credential = await creds.add(
            conn,
            session_vault().keys,
            tenant_id=tenant,
            connector="demo-bank",
            scope="read",
            secret=creds.CredentialSecret(api_key=SECRET),
            label="bank reader",
            created_by="test",
        )
    settings = {
        "DATABASE_URL": admin_dsn,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "CHARTER_TASK_QUEUE": TASK_QUEUE,
        "CHARTER_STATE_DIR": str(tmp_path / "state"),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("CHARTER_AUDIT_SIGNING_KEY", "CHARTER_AUDIT_CHECKPOINTS"):
        monkeypatch.delenv(name, raising=False)

    async def charter(*argv: str, code: int = 0) -> Any:
        # In this process, as the CLI's `main` runs a command: a child process per command
        # cost seconds of imports each.
        capsys.readouterr()
        args = build_parser().parse_args([*argv, "--json"])
        result = args.func(args)
        status = int((await result if inspect.isawaitable(result) else result) or 0)
        out, err = capsys.readouterr()
        assert status == code, (argv, out, err)
        assert SECRET not in out + err
        return json.loads(out)

    listed = await charter("credentials", "list", "-t", tenant)
    mine = next(c for c in listed if c["credential_id"] == credential.credential_id)
    assert mine["connector"] == "demo-bank" and mine["scope"] == "read"
    assert mine["status"] == "active" and mine["label"] == "bank reader"
    assert set(mine) >= {"kind", "kek_version", "created_at", "updated_at", "revoked_at"}

    keys = await charter("keys", "list")
    assert keys["kek_versions"] and {"version", "status", "credentials"} <= set(
        keys["kek_versions"][0]
    )
    assert sum(k["credentials"] for k in keys["kek_versions"]) >= 1
    assert [k for k in keys["payload_keys"] if k["current"]]

    people = await charter("members", "list", "-t", tenant)
    maya = next(m for m in people["members"] if m["member_id"] == "maya")
    assert "approver" in maya["roles"] and maya["active"] is True
    assert maya["keys"] and maya["keys"][0]["key_id"] and maya["keys"][0]["revoked_at"] is None

    connectors = await charter("connectors", "list", "-t", tenant)
    assert {c["capability"] for c in connectors} == {"bank", "bills", "payments"}
    assert all(c["default"] and c["missing_credentials"] == [] for c in connectors)

    shown = await charter("constitution", "show", "-t", tenant)
    assert shown["version"] == 1 and len(shown["content_hash"]) == 64
    assert any(r["id"] == "deny-already-paid" for r in shown["document"]["rules"])
    history = await charter("constitution", "history", "-t", tenant)
    assert [v["version"] for v in history] == [1]
    assert history[0]["content_hash"] == shown["content_hash"]
    assert history[0]["rules"] == len(shown["document"]["rules"])
    assert await charter("constitution", "diff", "1", "1", "-t", tenant) == {
        "tenant_id": tenant,
        "a": 1,
        "b": 1,
        "changes": [],
    }
    # The shown text is a constitution again: backtested against itself, nothing changes.
    # Through `main`, as a user's shell would redirect it: the text, with nothing around it.
    ran = await run_main(
        "constitution", "show", "-t", tenant, env=operator_env(tmp_path, **settings)
    )
    assert ran.code == 0, ran.err
    (tmp_path / "same.yaml").write_text(ran.out, encoding="utf-8")
    backtest = await charter("constitution", "backtest", str(tmp_path / "same.yaml"), "-t", tenant)
    assert backtest["tenant_id"] == tenant and backtest["cases"] == []
    assert backtest["candidate_hash"] == shown["content_hash"]

    verified = await charter("audit", "verify", "-t", tenant)
    assert verified["ok"] is True and verified["unproven"] == []
    (chain,) = verified["chains"]
    assert chain["tenant_id"] == tenant and chain["ok"] is True
    assert chain["first_bad_seq"] is None and chain["entries"] >= 1
    signed = await charter("audit", "checkpoint", "-t", tenant)
    assert [c["tenant_id"] for c in signed["signed"]] == [tenant]
    assert signed["signed"][0]["hash"] == chain["head_hash"] and signed["broken"] == []

    assert await charter("usage", "-t", tenant) == []
    calibration = await charter(
        "calibration", "-t", tenant, "--out", str(tmp_path / "calibration.png")
    )
    assert calibration["groups"] == [] and calibration["plot"] == str(tmp_path / "calibration.png")
    assert await charter("actions", "reconcile", "-t", tenant) == []

    status_ = await charter("stack", "status")
    assert status_["temporal"]["address"] == env.client.service_client.config.target_host
    assert status_["postgres"]["configured"] is True
    assert status_["postgres"]["dsn"] == redact_dsn(admin_dsn)
