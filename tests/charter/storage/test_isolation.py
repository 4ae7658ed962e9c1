"""Two tenants, every table, every command: tenant A never reads, changes or creates B's rows.

Runs as the application role through `Database.tenant`, the only path the code uses.
"""

from __future__ import annotations

import asyncpg
import pytest

from charter.config.settings import app_dsn
from charter.storage import Database
from tests.support.catalog import app_tables
from tests.support.tenants import TenantPair

pytestmark = pytest.mark.db


async def fingerprint(admin: asyncpg.Connection, table: str, tenant: str) -> tuple[int, str]:
    """Row count and a digest of every row of one tenant, read as the administrator."""
    row = await admin.fetchrow(
        f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) "
        f"AS digest FROM {table} t WHERE tenant_id = $1",
        tenant,
    )
    return row["n"], row["digest"]


async def test_every_table_has_rows_of_both_tenants(
    admin: asyncpg.Connection, pair: TenantPair
) -> None:
    """Otherwise the matrix below would pass vacuously: add a row to RUN_ROWS in conftest."""
    for table in await app_tables(admin):
        for tenant in (pair.a, pair.b):
            count, _ = await fingerprint(admin, table, tenant)
            assert count > 0, f"no fixture rows of {tenant} in {table}: add them to RUN_ROWS"


async def test_select_sees_only_own_rows(
    db: Database, admin: asyncpg.Connection, pair: TenantPair
) -> None:
    for table in await app_tables(admin):
        async with db.tenant(pair.a) as conn:
            row = await conn.fetchrow(
                f"SELECT count(*) AS total, count(*) FILTER (WHERE tenant_id <> $1) AS foreign_rows, "
                f"count(*) FILTER (WHERE tenant_id = $2) AS of_b FROM {table}",
                pair.a,
                pair.b,
            )
        assert row["foreign_rows"] == 0 and row["of_b"] == 0, table
        assert row["total"] == (await fingerprint(admin, table, pair.a))[0], table


async def test_update_and_delete_never_touch_other_tenant(
    db: Database, admin: asyncpg.Connection, pair: TenantPair
) -> None:
    for table in await app_tables(admin):
        before = await fingerprint(admin, table, pair.b)
        for sql in (
            f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = $1",
            f"DELETE FROM {table} WHERE tenant_id = $1",
        ):
            # Either the application holds the privilege and RLS hides B's rows (0 rows),
            # or it does not hold it at all (the audit tables): both are refusals.
            try:
                async with db.tenant(pair.a) as conn:
                    status = await conn.execute(sql, pair.b)
                assert status.endswith(" 0"), f"{table}: {sql} -> {status}"
            except asyncpg.InsufficientPrivilegeError as exc:
                assert "permission denied" in str(exc), f"{table}: {exc}"
        assert await fingerprint(admin, table, pair.b) == before, table


async def test_insert_into_other_tenant_fails(
    db: Database, admin: asyncpg.Connection, pair: TenantPair
) -> None:
    """A copy of one of A's rows relabelled as B's is refused before any uniqueness check."""
    for table in await app_tables(admin):
        before = await fingerprint(admin, table, pair.b)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(pair.a) as conn:
                await conn.execute(
                    f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, "
                    f"to_jsonb(r) || jsonb_build_object('tenant_id', $2::text))).* "
                    f"FROM {table} r WHERE tenant_id = $1 LIMIT 1",
                    pair.a,
                    pair.b,
                )
        assert await fingerprint(admin, table, pair.b) == before, table


async def test_moving_a_row_to_other_tenant_fails(
    db: Database, admin: asyncpg.Connection, pair: TenantPair
) -> None:
    for table in await app_tables(admin):
        before_a = await fingerprint(admin, table, pair.a)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(pair.a) as conn:
                await conn.execute(
                    f"UPDATE {table} SET tenant_id = $2 WHERE tenant_id = $1", pair.a, pair.b
                )
        assert await fingerprint(admin, table, pair.a) == before_a, table


async def test_same_key_in_two_tenants_does_not_collide(db: Database, pair: TenantPair) -> None:
    """tenant_id is part of every key: A creating a key B uses reveals nothing about B."""
    async with db.tenant(pair.a) as conn:
        await conn.execute(
            "INSERT INTO charter.vendors (tenant_id, vendor_id, name) VALUES ($1, 'only-b', 'x')",
            pair.a,
        )
    async with db.tenant(pair.b) as conn:
        await conn.execute(
            "INSERT INTO charter.vendors (tenant_id, vendor_id, name) VALUES ($1, 'only-b', 'y')",
            pair.b,
        )
        assert (
            await conn.fetchval("SELECT name FROM charter.vendors WHERE vendor_id = 'only-b'")
            == "y"
        )


async def test_no_tenant_set_sees_nothing_and_writes_nothing(
    db: Database, admin: asyncpg.Connection, pair: TenantPair
) -> None:
    async with db.pool.acquire() as conn, conn.transaction():
        for table in await app_tables(admin):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO charter.vendors (tenant_id, vendor_id, name) VALUES ($1, 'v', 'v')",
                pair.a,
            )


async def test_pool_of_one_never_leaks_the_tenant(admin_dsn: str, pair: TenantPair) -> None:
    """Interleaved transactions on one pooled connection: each sees only its own rows, and
    the setting is empty after every commit and after every rollback."""
    single = await Database.connect(app_dsn(admin_dsn), min_size=1, max_size=1)
    try:
        for round_ in range(3):
            for tenant in (pair.a, pair.b, pair.a):
                async with single.tenant(tenant) as conn:
                    seen = {
                        r["tenant_id"]
                        for r in await conn.fetch("SELECT tenant_id FROM charter.invoices")
                    }
                    assert seen == {tenant}, round_
                    backend = await conn.fetchval("SELECT pg_backend_pid()")
                async with single.pool.acquire() as conn:
                    assert await conn.fetchval("SELECT pg_backend_pid()") == backend
                    assert await conn.fetchval(
                        "SELECT current_setting('charter.tenant_id', true)"
                    ) in (None, "")
                    assert await conn.fetchval("SELECT count(*) FROM charter.invoices") == 0
            with pytest.raises(RuntimeError, match="boom"):
                async with single.tenant(pair.b):
                    raise RuntimeError("boom")
            async with single.pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_setting('charter.tenant_id', true)") in (
                    None,
                    "",
                )
    finally:
        await single.close()


async def test_interleaved_transactions_on_one_connection(admin_dsn: str, pair: TenantPair) -> None:
    conn = await asyncpg.connect(app_dsn(admin_dsn))
    try:
        for tenant in (pair.a, pair.b, pair.a, pair.b):
            async with conn.transaction():
                await conn.execute("SELECT set_config('charter.tenant_id', $1, true)", tenant)
                seen = {
                    r["tenant_id"]
                    for r in await conn.fetch("SELECT tenant_id FROM charter.vendors")
                }
                assert seen == {tenant}
            assert await conn.fetchval("SELECT current_setting('charter.tenant_id', true)") in (
                None,
                "",
            )
    finally:
        await conn.close()


async def test_leaky_function_never_sees_other_tenant_values(
    db: Database, admin: asyncpg.Connection, pair: TenantPair
) -> None:
    """RLS quals run before a non-leakproof user function, however cheap it claims to be."""
    await admin.execute(
        "CREATE OR REPLACE FUNCTION public.charter_spy(tenant text, value text) RETURNS boolean "
        "LANGUAGE plpgsql COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'spy:%:%', tenant, value; "
        "RETURN true; END $$; GRANT EXECUTE ON FUNCTION public.charter_spy(text, text) TO charter_app"
    )
    seen: list[str] = []

    def listen(_conn: object, msg: asyncpg.PostgresLogMessage) -> None:
        seen.append(msg.message)

    try:
        # Control: RLS does not bind the administrator, so the spy does see B there.
        admin.add_log_listener(listen)
        await admin.fetch("SELECT 1 FROM charter.vendors WHERE public.charter_spy(tenant_id, name)")
        admin.remove_log_listener(listen)
        assert pair.b in {m.split(":")[1] for m in seen}
        seen.clear()
        async with db.tenant(pair.a) as conn:
            conn.add_log_listener(listen)
            try:
                for table, column in (
                    ("charter.invoices", "memo"),
                    ("charter.vendors", "name"),
                    ("charter.audit_entries", "snapshot::text"),
                    ("charter.members", "display_name"),
                ):
                    await conn.fetch(
                        f"SELECT 1 FROM {table} WHERE public.charter_spy(tenant_id, {column})"
                    )
                    await conn.fetch(
                        f"SELECT 1 FROM {table} WHERE tenant_id = $1 AND "
                        f"public.charter_spy(tenant_id, {column})",
                        pair.b,
                    )
            finally:
                conn.remove_log_listener(listen)
    finally:
        await admin.execute("DROP FUNCTION public.charter_spy(text, text)")
    assert seen, "the spy was never called: the probe proves nothing"
    tenants = {m.split(":")[1] for m in seen}
    assert tenants == {pair.a}
