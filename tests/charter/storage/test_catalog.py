"""The catalog itself: a table, role, view or function that weakens isolation fails CI."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.catalog import app_privileges, app_tables, catalog_problems, owned_tables

pytestmark = pytest.mark.db


async def test_catalog_has_no_isolation_gaps(admin: asyncpg.Connection) -> None:
    tables = await app_tables(admin)
    assert "charter.audit_entries" in tables and "charter.invoices" in tables
    assert await catalog_problems(admin) == []


async def test_catalog_check_catches_a_table_without_rls(admin: asyncpg.Connection) -> None:
    """The check itself can fail: a rogue table, view, function and grant are all named."""
    tx = admin.transaction()
    await tx.start()
    try:
        await admin.execute(
            "CREATE TABLE charter.rogue (tenant_id text, id text UNIQUE);"
            "GRANT SELECT, INSERT ON charter.rogue TO charter_app;"
            "CREATE VIEW charter.rogue_view AS SELECT * FROM charter.invoices;"
            "CREATE FUNCTION charter.rogue_fn() RETURNS int LANGUAGE sql SECURITY DEFINER "
            "AS 'SELECT 1';"
            "GRANT TRUNCATE ON charter.audit_entries TO charter_app;"
        )
        problems = await catalog_problems(admin)
    finally:
        await tx.rollback()
    assert "charter.rogue: row-level security is not enabled" in problems
    assert "charter.rogue: row-level security is not forced" in problems
    assert "charter.rogue: no policy applies to charter_app" in problems
    assert "charter.rogue: charter_app holds INSERT but no policy covers it" in problems
    assert "charter.rogue: unique key charter.rogue_id_key lacks tenant_id" in problems
    assert "view charter.rogue_view lacks security_invoker=true" in problems
    assert "SECURITY DEFINER function charter.rogue_fn() does not pin search_path" in problems
    assert "SECURITY DEFINER function charter.rogue_fn() is executable by PUBLIC" in problems
    assert "charter.audit_entries: charter_app holds TRUNCATE" in problems


async def test_catalog_check_catches_a_privileged_app_role(admin: asyncpg.Connection) -> None:
    tx = admin.transaction()
    await tx.start()
    try:
        await admin.execute("ALTER ROLE charter_app BYPASSRLS; GRANT charter_owner TO charter_app")
        problems = await catalog_problems(admin)
    finally:
        await tx.rollback()
    assert "role charter_app has BYPASSRLS" in problems
    assert any("charter_app is a member of charter_owner" in p for p in problems)


async def test_catalog_covers_every_schema_charter_creates(admin: asyncpg.Connection) -> None:
    """The migration ledger and the member keys are covered, though the application cannot
    use the ledger's schema; a table there without forced RLS is named."""
    tables = await owned_tables(admin)
    assert "charter_meta.schema_migrations" in tables and "charter.member_keys" in tables
    tx = admin.transaction()
    await tx.start()
    try:
        await admin.execute(
            "ALTER TABLE charter_meta.schema_migrations NO FORCE ROW LEVEL SECURITY;"
            "GRANT INSERT ON charter.member_keys TO charter_app"
        )
        problems = await catalog_problems(admin)
    finally:
        await tx.rollback()
    assert "charter_meta.schema_migrations: row-level security is not forced" in problems
    assert "charter.member_keys: charter_app holds INSERT" in problems


async def test_the_application_only_reads_the_law_the_roster_and_the_keys(
    admin: asyncpg.Connection,
) -> None:
    """A stolen worker cannot write a constitution, a member or a key: SELECT is all the
    application role holds on them, on the table or any column."""
    for table in ("charter.members", "charter.member_keys", "charter.constitutions"):
        assert await app_privileges(admin, table) == ["SELECT"], table


async def test_catalog_check_catches_a_column_grant_on_the_roster(
    admin: asyncpg.Connection,
) -> None:
    tx = admin.transaction()
    await tx.start()
    try:
        await admin.execute("GRANT UPDATE (slack_user_id) ON charter.members TO charter_app")
        problems = await catalog_problems(admin)
    finally:
        await tx.rollback()
    assert "charter.members: charter_app holds UPDATE" in problems
