"""Refuse PostgreSQL servers with known row-level-security bypasses.

Charter's tenant isolation rests on RLS, so a server with a published RLS bypass is refused
at start-up (by the migrator and by every application pool). Minimums per major version,
each the first release fixing all of:

- CVE-2025-8713: optimizer statistics exposed sampled values of rows that RLS hides, through
  a leaky operator (fixed in 17.6, 16.10, 15.14, 14.19, 13.22, August 2025);
- CVE-2024-10976: RLS policies under subqueries ignored user-id changes, so a cached plan
  could apply another role's policies (fixed in 17.1, 16.5, 15.9, 14.14, 13.17);
- CVE-2023-2455: RLS policies disregarded user-id changes after inlining (fixed in 15.3,
  14.8, 13.11).

Majors before 13 are end-of-life and refused outright; 18.0 shipped after these fixes.
Revisit this table when a new RLS advisory is published.
"""

from __future__ import annotations

import asyncpg

#: major -> lowest acceptable server_version_num
MINIMUM_BY_MAJOR: dict[int, int] = {
    13: 130022,
    14: 140019,
    15: 150014,
    16: 160010,
    17: 170006,
}
OLDEST_MAJOR = 13


class UnsafeServer(RuntimeError):
    """The PostgreSQL server is too old to enforce row-level security reliably."""


def minimum_for(version_num: int) -> int | None:
    """The lowest acceptable version_num for this server's major; None if the major is refused."""
    major = version_num // 10000
    if major < OLDEST_MAJOR:
        return None
    return MINIMUM_BY_MAJOR.get(major, major * 10000)


def _pretty(version_num: int) -> str:
    return f"{version_num // 10000}.{version_num % 10000}"


def check_version(version_num: int) -> None:
    minimum = minimum_for(version_num)
    if minimum is None:
        raise UnsafeServer(
            f"PostgreSQL {_pretty(version_num)} is end-of-life and has known row-level "
            f"security bypasses; Charter needs {OLDEST_MAJOR} or newer"
        )
    if version_num < minimum:
        raise UnsafeServer(
            f"PostgreSQL {_pretty(version_num)} has known row-level security bypasses "
            f"(CVE-2025-8713, CVE-2024-10976); upgrade to {_pretty(minimum)} or newer"
        )


async def check_server(conn: asyncpg.Connection) -> int:
    """Check the connected server; return its version_num. The hash chain needs UTF-8."""
    version_num = int(await conn.fetchval("SELECT current_setting('server_version_num')"))
    check_version(version_num)
    encoding = await conn.fetchval("SELECT current_setting('server_encoding')")
    if encoding != "UTF8":
        raise UnsafeServer(f"the database encoding is {encoding}; Charter needs UTF8")
    return version_num


async def check_application_role(conn: asyncpg.Connection) -> str:
    """Refuse to run application code as a role that could step around row-level security:
    a superuser, a BYPASSRLS role, a role owning objects, or a member of another role."""
    row = await conn.fetchrow(
        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
        "EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "        WHERE c.relowner = r.oid AND n.nspname NOT LIKE 'pg_%' "
        "        AND n.nspname <> 'information_schema') AS owns_tables, "
        "EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid) AS is_member "
        "FROM pg_roles r WHERE r.rolname = current_user"
    )
    if row is None:
        raise UnsafeServer("the connected role is not in pg_roles")
    name = row["rolname"]
    if row["rolsuper"] or row["rolbypassrls"]:
        raise UnsafeServer(
            f"the application connects as {name}, which bypasses row-level security; "
            "connect as charter_app (CHARTER_APP_DATABASE_URL)"
        )
    if row["owns_tables"] or row["is_member"]:
        raise UnsafeServer(
            f"the application role {name} owns tables or belongs to another role, so it "
            "could step around row-level security; use charter_app"
        )
    return str(name)
