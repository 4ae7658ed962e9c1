"""The audit trail is append-only for every role, and appends go through one function."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from charter.audit.chain import verify_chain
from charter.storage import Database, audit_trail

pytestmark = pytest.mark.db

REWRITES = [
    "UPDATE charter.audit_entries SET actor = 'mallory' WHERE tenant_id = $1",
    "DELETE FROM charter.audit_entries WHERE tenant_id = $1",
    "UPDATE charter.audit_heads SET seq = 0 WHERE tenant_id = $1",
    "DELETE FROM charter.audit_heads WHERE tenant_id = $1",
]


@pytest.mark.parametrize("sql", REWRITES)
async def test_application_role_cannot_rewrite(db: Database, tenant: str, sql: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with db.tenant(tenant) as conn:
            await conn.execute(sql, tenant)


@pytest.mark.parametrize("table", ["charter.audit_entries", "charter.audit_heads"])
async def test_application_role_cannot_truncate(db: Database, tenant: str, table: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with db.tenant(tenant) as conn:
            await conn.execute(f"TRUNCATE {table}")


async def test_application_role_cannot_insert_directly(db: Database, tenant: str) -> None:
    """Only charter.audit_append may add entries: the app cannot pick seq or prev_hash."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with db.tenant(tenant) as conn:
            await conn.execute(
                "INSERT INTO charter.audit_entries (tenant_id, seq, kind, occurred_at, actor, "
                "snapshot, prev_hash, hash) VALUES ($1, 999, 'forged', 'now', 'x', '{}', $2, $2)",
                tenant,
                "0" * 64,
            )


async def _as_owner(admin: asyncpg.Connection, tenant: str, sql: str, *, role: str) -> str:
    async with admin.transaction():
        if role == "owner":
            await admin.execute("SET LOCAL ROLE charter_owner")
        await admin.execute("SELECT set_config('charter.tenant_id', $1, true)", tenant)
        return await admin.execute(sql, *([tenant] if "$1" in sql else []))


@pytest.mark.parametrize(
    "sql", [*REWRITES, "TRUNCATE charter.audit_entries", "TRUNCATE charter.audit_heads"]
)
async def test_superuser_is_refused_by_triggers(
    admin: asyncpg.Connection, tenant: str, sql: str
) -> None:
    """A superuser bypasses grants and RLS; the triggers still refuse every rewrite."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"append-only|only moves forward"):
        await _as_owner(admin, tenant, sql, role="superuser")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE charter.audit_heads SET seq = 0 WHERE tenant_id = $1",
        "TRUNCATE charter.audit_entries",
        "TRUNCATE charter.audit_heads",
    ],
)
async def test_owner_is_refused_by_triggers(
    admin: asyncpg.Connection, tenant: str, sql: str
) -> None:
    """The owning role holds every privilege on its tables; the triggers stop it."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"append-only|only moves forward"):
        await _as_owner(admin, tenant, sql, role="owner")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE charter.audit_entries SET actor = 'mallory' WHERE tenant_id = $1",
        "DELETE FROM charter.audit_entries WHERE tenant_id = $1",
        "DELETE FROM charter.audit_heads WHERE tenant_id = $1",
    ],
)
async def test_owner_has_no_policy_to_rewrite(
    admin: asyncpg.Connection, tenant: str, sql: str
) -> None:
    """Before the triggers, forced RLS has no UPDATE/DELETE policy for these: zero rows."""
    assert (await _as_owner(admin, tenant, sql, role="owner")).endswith(" 0")
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM charter.audit_entries WHERE tenant_id = $1 AND actor = 'mallory'",
            tenant,
        )
        == 0
    )


async def test_append_refuses_another_tenant(db: Database, tenant: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="outside that tenant"):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(conn, "someone-else", "observed", {}, actor="test")


async def test_concurrent_appends_of_one_tenant_form_one_chain(db: Database, tenant: str) -> None:
    """The head row lock serialises appends: no duplicate seq, no fork, nothing lost."""

    async def one(i: int) -> int:
        async with db.tenant(tenant) as conn:
            return (await audit_trail.append(conn, tenant, "observed", {"i": i}, actor="test")).seq

    seqs = await asyncio.gather(*(one(i) for i in range(40)))
    assert len(set(seqs)) == 40
    async with db.tenant(tenant) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant)]
        head = await audit_trail.head(conn, tenant)
    report = verify_chain(tenant, entries)
    assert report.ok, report
    assert report.head_seq == head.seq and report.head_hash == head.hash
    assert sorted(e.snapshot.get("i") for e in entries if e.kind == "observed") == list(range(40))


async def test_rolled_back_append_leaves_no_gap(db: Database, tenant: str) -> None:
    with pytest.raises(RuntimeError):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(conn, tenant, "observed", {"doomed": True}, actor="test")
            raise RuntimeError("the caller's work failed")
    async with db.tenant(tenant) as conn:
        await audit_trail.append(conn, tenant, "observed", {"kept": True}, actor="test")
        entries = [e async for e in audit_trail.entries(conn, tenant)]
    assert verify_chain(tenant, entries).ok
    assert not any(e.snapshot.get("doomed") for e in entries)
