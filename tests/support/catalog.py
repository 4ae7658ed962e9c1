"""Read the PostgreSQL catalog and list every way the isolation rules are broken.

Application schemas are those the application role may use. Every table in them needs
forced RLS and a tenant policy for each command the application holds; every unique key
needs tenant_id; views need security_invoker; definer functions need a pinned search_path;
the roles must not be able to step around any of it.
"""

from __future__ import annotations

import asyncpg

APP_ROLE = "charter_app"
OWNER_ROLE = "charter_owner"
COMMANDS = {"SELECT": "r", "INSERT": "a", "UPDATE": "w", "DELETE": "d"}


async def app_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege($1, oid, 'USAGE') "
        "AND nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_%' "
        "ORDER BY nspname",
        APP_ROLE,
    )
    return [r["nspname"] for r in rows]


async def app_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1::text[]) "
        "AND c.relkind IN ('r', 'p') ORDER BY 1",
        await app_schemas(conn),
    )
    return [r["name"] for r in rows]


async def role_problems(conn: asyncpg.Connection) -> list[str]:
    problems = []
    roles = {
        r["rolname"]: r
        for r in await conn.fetch(
            "SELECT oid, rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles "
            "WHERE rolname = ANY($1::text[])",
            [APP_ROLE, OWNER_ROLE],
        )
    }
    for name in (APP_ROLE, OWNER_ROLE):
        role = roles.get(name)
        if role is None:
            problems.append(f"role {name} is missing")
            continue
        if role["rolsuper"]:
            problems.append(f"role {name} is a superuser")
        if role["rolbypassrls"]:
            problems.append(f"role {name} has BYPASSRLS")
    if OWNER_ROLE in roles and roles[OWNER_ROLE]["rolcanlogin"]:
        problems.append(f"role {OWNER_ROLE} can log in")
    if APP_ROLE in roles:
        app_oid = roles[APP_ROLE]["oid"]
        owned = await conn.fetch(
            "SELECT 'relation ' || oid::regclass::text AS what FROM pg_class WHERE relowner = $1 "
            "UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = $1 "
            "UNION ALL SELECT 'function ' || oid::regprocedure::text FROM pg_proc WHERE proowner = $1 "
            "UNION ALL SELECT 'type ' || oid::regtype::text FROM pg_type WHERE typowner = $1 "
            "UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datdba = $1",
            app_oid,
        )
        problems += [f"{APP_ROLE} owns {r['what']}" for r in owned]
        memberships = await conn.fetch(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "WHERE m.member = $1",
            app_oid,
        )
        problems += [
            f"{APP_ROLE} is a member of {r['rolname']} (it could SET ROLE around RLS)"
            for r in memberships
        ]
    return problems


async def table_problems(conn: asyncpg.Connection) -> list[str]:
    problems = []
    for table in await app_tables(conn):
        rel = await conn.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass",
            table,
        )
        if not rel["relrowsecurity"]:
            problems.append(f"{table}: row-level security is not enabled")
        if not rel["relforcerowsecurity"]:
            problems.append(f"{table}: row-level security is not forced")
        policies = await conn.fetch(
            "SELECT polname, polcmd::text AS polcmd, polpermissive, "
            "coalesce(pg_get_expr(polqual, polrelid), '') AS qual, "
            "coalesce(pg_get_expr(polwithcheck, polrelid), '') AS with_check "
            "FROM pg_policy WHERE polrelid = $1::regclass "
            "AND (0 = ANY(polroles) OR (SELECT oid FROM pg_roles WHERE rolname = $2) = ANY(polroles))",
            table,
            APP_ROLE,
        )
        if not policies:
            problems.append(f"{table}: no policy applies to {APP_ROLE}")
        for p in policies:
            expr = p["qual"] + p["with_check"]
            if "charter.tenant_id" not in expr:
                problems.append(f"{table}: policy {p['polname']} is not keyed on the tenant")
        for command, code in COMMANDS.items():
            held = await conn.fetchval(
                "SELECT has_table_privilege($1, $2::regclass, $3)", APP_ROLE, table, command
            )
            if held and not any(p["polcmd"] in (code, "*") for p in policies):
                problems.append(f"{table}: {APP_ROLE} holds {command} but no policy covers it")
        for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER"):
            if await conn.fetchval(
                "SELECT has_table_privilege($1, $2::regclass, $3)", APP_ROLE, table, privilege
            ):
                problems.append(f"{table}: {APP_ROLE} holds {privilege}")
        keys = await conn.fetch(
            "SELECT i.indexrelid::regclass::text AS name FROM pg_index i "
            "WHERE i.indrelid = $1::regclass AND i.indisunique AND NOT EXISTS ("
            "SELECT FROM pg_attribute a WHERE a.attrelid = i.indrelid "
            "AND a.attname = 'tenant_id' AND a.attnum = ANY(i.indkey::int2[]))",
            table,
        )
        problems += [f"{table}: unique key {k['name']} lacks tenant_id" for k in keys]
    return problems


async def owned_schema_problems(conn: asyncpg.Connection) -> list[str]:
    """Every table in every schema Charter creates (those the owner role owns, whether or not
    the application may use them) has row-level security enabled and forced."""
    rows = await conn.fetch(
        "SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relrowsecurity, "
        "c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = $1) "
        "AND c.relkind IN ('r', 'p') ORDER BY 1",
        OWNER_ROLE,
    )
    problems = []
    for r in rows:
        if not r["relrowsecurity"]:
            problems.append(f"{r['name']}: row-level security is not enabled")
        if not r["relforcerowsecurity"]:
            problems.append(f"{r['name']}: row-level security is not forced")
    return problems


async def owned_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspowner = "
        "(SELECT oid FROM pg_roles WHERE rolname = $1) AND c.relkind IN ('r', 'p') ORDER BY 1",
        OWNER_ROLE,
    )
    return [r["name"] for r in rows]


async def routine_and_view_problems(conn: asyncpg.Connection) -> list[str]:
    schemas = await app_schemas(conn)
    views = await conn.fetch(
        "SELECT format('%I.%I', n.nspname, c.relname) AS name, c.reloptions FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1::text[]) "
        "AND c.relkind IN ('v', 'm')",
        schemas,
    )
    problems = [
        f"view {v['name']} lacks security_invoker=true"
        for v in views
        if "security_invoker=true" not in (v["reloptions"] or [])
    ]
    definers = await conn.fetch(
        "SELECT p.oid::regprocedure::text AS name, p.proconfig, "
        "(p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a "
        "  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')) AS public_execute "
        "FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1::text[]) "
        "AND p.prosecdef",
        schemas,
    )
    problems += [
        f"SECURITY DEFINER function {f['name']} does not pin search_path"
        for f in definers
        if not any(c.startswith("search_path=") for c in (f["proconfig"] or []))
    ]
    # A definer function runs with the owner's rights: only roles granted it may call it.
    problems += [
        f"SECURITY DEFINER function {f['name']} is executable by PUBLIC"
        for f in definers
        if f["public_execute"]
    ]
    return problems


#: Tables the application only reads: the audit trail, and the authority behind every
#: payment (the law, the roster and members' keys), which only the owner role writes.
READ_ONLY = (
    "charter.audit_entries",
    "charter.audit_heads",
    "charter.member_keys",
    "charter.members",
    "charter.constitutions",
)


async def app_privileges(conn: asyncpg.Connection, table: str) -> list[str]:
    """Every privilege the application role holds on `table`, on the table or any column."""
    held = []
    for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
        if await conn.fetchval(
            "SELECT has_table_privilege($1, $2::regclass, $3)", APP_ROLE, table, privilege
        ) or (
            privilege in ("SELECT", "INSERT", "UPDATE", "REFERENCES")
            and await conn.fetchval(
                "SELECT has_any_column_privilege($1, $2::regclass, $3)", APP_ROLE, table, privilege
            )
        ):
            held.append(privilege)
    return held


async def audit_problems(conn: asyncpg.Connection) -> list[str]:
    problems = []
    for table in READ_ONLY:
        problems += [
            f"{table}: {APP_ROLE} holds {p}"
            for p in await app_privileges(conn, table)
            if p != "SELECT"
        ]
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1::regclass", table
        )
        if owner != OWNER_ROLE:
            problems.append(f"{table} is owned by {owner}, not {OWNER_ROLE}")
        grants = await conn.fetch(
            "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema || '.' || table_name = $1 AND grantee <> $2 "
            "AND privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')",
            table,
            OWNER_ROLE,
        )
        problems += [f"{table}: {g['grantee']} holds {g['privilege_type']}" for g in grants]
    return problems


async def catalog_problems(conn: asyncpg.Connection) -> list[str]:
    tables = await table_problems(conn)
    return [
        *await role_problems(conn),
        *tables,
        *[p for p in await owned_schema_problems(conn) if p not in tables],
        *await routine_and_view_problems(conn),
        *await audit_problems(conn),
    ]
