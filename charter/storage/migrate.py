"""Schema migrations, applied by an administrator connection as the owner role.

The owner role cannot log in; the migrator `SET ROLE`s to it so that every object is
owned by it and the application role owns nothing. Applying is idempotent and serialised
by an advisory lock, so two processes starting together do not race.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation

from charter.storage.migration_versions import RENUMBERED, migration_files
from charter.storage.server_checks import check_server

log = logging.getLogger(__name__)

OWNER_ROLE = "charter_owner"
APP_ROLE = "charter_app"
_LOCK_KEY = 0x43484152  # "CHAR"

_BOOTSTRAP = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    -- Roles are the server's, not this database's: altered only when they are wrong, so
    -- databases of one server migrating side by side do not update the same role row.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}'
               AND (rolcanlogin OR rolsuper OR rolbypassrls)) THEN
        ALTER ROLE {OWNER_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}'
               AND (rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole)) THEN
        ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END;
$$;
CREATE SCHEMA IF NOT EXISTS charter_meta AUTHORIZATION {OWNER_ROLE};
CREATE SCHEMA IF NOT EXISTS charter AUTHORIZATION {OWNER_ROLE};
REVOKE ALL ON SCHEMA charter_meta FROM PUBLIC;
REVOKE CREATE ON SCHEMA charter FROM PUBLIC;
CREATE TABLE IF NOT EXISTS charter_meta.schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE charter_meta.schema_migrations OWNER TO {OWNER_ROLE};
-- Every table, no exceptions: the migration ledger is the owner's alone.
ALTER TABLE charter_meta.schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter_meta.schema_migrations FORCE ROW LEVEL SECURITY;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_policy WHERE polname = 'owner_only'
                   AND polrelid = 'charter_meta.schema_migrations'::regclass) THEN
        CREATE POLICY owner_only ON charter_meta.schema_migrations TO {OWNER_ROLE}
            USING (true) WITH CHECK (true);
    END IF;
END;
$$;
"""


# Where an older release's versions were recorded again beside the new ones (to run it), the
# new ones stay; every other old version becomes its new one, keeping when it was applied.
_DROP_OLD_BESIDE_NEW = """
DELETE FROM charter_meta.schema_migrations AS m
USING unnest($1::text[], $2::text[]) AS r(old, new)
WHERE m.version = r.old
  AND EXISTS (SELECT FROM charter_meta.schema_migrations WHERE version = r.new)
"""
_RENAME = """
UPDATE charter_meta.schema_migrations AS m SET version = r.new
FROM unnest($1::text[], $2::text[]) AS r(old, new)
WHERE m.version = r.old
RETURNING r.old, r.new
"""


async def _record_current_versions(conn: asyncpg.Connection) -> None:
    """Give every old version in the ledger its file's current one (see `RENUMBERED`)."""
    old, new = list(RENUMBERED), list(RENUMBERED.values())
    await conn.execute(_DROP_OLD_BESIDE_NEW, old, new)
    for row in await conn.fetch(_RENAME, old, new):
        log.info("migration %s is now recorded as %s", row["old"], row["new"])


async def _applied_versions(conn: asyncpg.Connection) -> set[str]:
    async with conn.transaction():
        # Read as the owner: the ledger's policy admits no one else (an administrator
        # without BYPASSRLS would otherwise see no row and re-apply everything).
        await conn.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
        await _record_current_versions(conn)
        rows = await conn.fetch("SELECT version FROM charter_meta.schema_migrations")
    return {r["version"] for r in rows}


#: The advisory lock serialises migrations of one database; roles are shared by every
#: database of the server, so two databases migrating at once can still race on a role row
#: ("tuple concurrently updated"). The bootstrap is idempotent: it is tried again, briefly.
_BOOTSTRAP_ATTEMPTS = 5


async def _bootstrap(conn: asyncpg.Connection) -> None:
    for attempt in range(1, _BOOTSTRAP_ATTEMPTS + 1):
        try:
            await conn.execute(_BOOTSTRAP)
            return
        except asyncpg.InternalServerError as exc:
            if "concurrently" not in str(exc) or attempt == _BOOTSTRAP_ATTEMPTS:
                raise
            await asyncio.sleep(0.05 * attempt)


async def migrate(admin_dsn: str, *, app_password: str | None = None) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    conn = await asyncpg.connect(admin_dsn)
    applied: list[str] = []
    try:
        await check_server(conn)
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await _bootstrap(conn)
            if app_password:
                # Quoted by PostgreSQL itself; the password never appears in a log line, nor
                # in a span (the statement instrumentation records statements' text).
                with suppress_instrumentation():
                    await conn.execute(
                        f"ALTER ROLE {APP_ROLE} PASSWORD "
                        + await conn.fetchval("SELECT quote_literal($1::text)", app_password)
                    )
            done = await _applied_versions(conn)
            for version, sql in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO charter_meta.schema_migrations (version) VALUES ($1)",
                        version,
                    )
                log.info("applied migration %s", version)
                applied.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """The migrations this code needs that the database lacks, as the application role sees
    it (through `charter.applied_migrations()`; before that function existed, all of them).
    A version recorded under its old number counts as its file's, so a worker of this code
    starts on a database migrated before the renumbering, as before."""
    try:
        recorded = await conn.fetch("SELECT charter.applied_migrations()")
    except (asyncpg.UndefinedFunctionError, asyncpg.InvalidSchemaNameError):
        recorded = []
    applied = {RENUMBERED.get(r[0], r[0]) for r in recorded}
    return [version for version, _ in migration_files() if version not in applied]
