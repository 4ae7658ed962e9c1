"""`charter keys` end to end on a database of its own, with the local keyring provider."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from charter.audit.chain import verify_chain
from charter.config.settings import app_dsn
from charter.crypto.keyring import KeyringFile, LocalKeyProvider
from charter.demo.seed import seed
from charter.storage import Database, audit_trail
from charter.storage import credential_vault as creds
from charter_cli import main
from tests.support.scratch import migrated_database
from tests.support.vault import session_vault


@pytest.fixture
async def own_dsn(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server, prefix="charter_keys") as dsn:
        yield dsn


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, list(argv))
    return code, capsys.readouterr().out


async def test_rotate_rewrap_retire(
    own_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("DATABASE_URL", own_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # set, so nothing embedded starts
    monkeypatch.setenv("CHARTER_STATE_DIR", str(state))
    monkeypatch.setenv("CHARTER_KEY_PROVIDER", "local")
    # The local keyring file is development's only (a deployment's KEK is configured).
    monkeypatch.setenv("CHARTER_DEVELOPMENT", "true")
    monkeypatch.delenv("CHARTER_KEK", raising=False)
    monkeypatch.delenv("CHARTER_PAYLOAD_KEYS", raising=False)
    db = await Database.connect(app_dsn(own_dsn))
    try:
        await seed(
            db, "acme", keys=session_vault().keys, admin_dsn=own_dsn
        )  # four demo credentials under local KEK v1, keyring generated
        keyring = state / "keyring.json"
        assert stat.S_IMODE(keyring.stat().st_mode) == 0o600

        code, out = await cli(capsys, "keys", "list")
        assert code == 0 and "current" in out and "local-1 (current)" in out
        code, out = await cli(capsys, "keys", "retire", "1")
        assert code == 2 and "still wraps 4 data keys" in out
        code, out = await cli(capsys, "keys", "rotate")
        assert code == 0 and "version 2 is now current" in out and "rewrapped 4 data keys" in out
        code, out = await cli(capsys, "keys", "retire", "2")
        assert code == 2 and "version 2 still wraps 4" in out
        code, out = await cli(capsys, "keys", "retire", "1")
        assert code == 0 and "retired" in out
        data = json.loads(keyring.read_text())
        assert set(data["kek"]["versions"]) == {"2"} and data["kek"]["retired"] == [1]

        provider = LocalKeyProvider(KeyringFile(keyring))
        async with db.tenant("acme") as conn:
            infos = await creds.list_credentials(conn, "acme")
            assert {i.kek_version for i in infos} == {2}
            for info in infos:
                got = await creds.ScopedCredentials(provider, info.scope).obtain(
                    conn, "acme", info.credential_id
                )
                assert got.secret.values()
            entries = [e async for e in audit_trail.entries(conn, "acme")]
        assert any(e.kind == "credentials_rewrapped" for e in entries)
        assert verify_chain("acme", entries).ok

        code, out = await cli(capsys, "keys", "rotate", "--payload")
        assert code == 0 and "local-2 is now current" in out
        code, out = await cli(capsys, "keys", "retire", "--payload", "local-2")
        assert code == 2 and "current payload key" in out
        code, out = await cli(capsys, "keys", "retire", "--payload", "local-1")
        assert code == 0
        assert set(json.loads(keyring.read_text())["payload"]["keys"]) == {"local-2"}
    finally:
        await db.close()
