"""Tenant members and who may decide on exceptions."""

from __future__ import annotations

import asyncpg

from charter.governance.approvals import APPROVER_ROLES


async def approvers(conn: asyncpg.Connection, tenant_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT member_id FROM charter.members WHERE tenant_id = $1 AND active "
        "AND roles && $2::text[] ORDER BY member_id",
        tenant_id,
        list(APPROVER_ROLES),
    )
    return [r["member_id"] for r in rows]


async def is_approver(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM charter.members WHERE tenant_id = $1 AND "
            "member_id = $2 AND active AND roles && $3::text[])",
            tenant_id,
            member_id,
            list(APPROVER_ROLES),
        )
    )


async def roles(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> list[str] | None:
    """An active member's roles, or None if they are not an active member of the tenant."""
    row = await conn.fetchrow(
        "SELECT roles FROM charter.members WHERE tenant_id = $1 AND member_id = $2 AND active",
        tenant_id,
        member_id,
    )
    return list(row["roles"]) if row else None


async def approver_roles(conn: asyncpg.Connection, tenant_id: str) -> dict[str, list[str]]:
    rows = await conn.fetch(
        "SELECT member_id, roles FROM charter.members WHERE tenant_id = $1 AND active "
        "AND roles && $2::text[] ORDER BY member_id",
        tenant_id,
        list(APPROVER_ROLES),
    )
    return {r["member_id"]: sorted(r["roles"]) for r in rows}


async def is_owner(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> bool:
    found = await roles(conn, tenant_id, member_id)
    return found is not None and "owner" in found


async def listing(conn: asyncpg.Connection, tenant_id: str) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT member_id, display_name, roles, slack_user_id, active FROM charter.members "
        "WHERE tenant_id = $1 ORDER BY member_id",
        tenant_id,
    )
    return [dict(r) for r in rows]


async def add(
    conn: asyncpg.Connection,
    tenant_id: str,
    member_id: str,
    *,
    display_name: str,
    roles: list[str],
    slack_user_id: str | None = None,
) -> bool:
    """Add a member (or re-activate one); False if an active member has that id already."""
    status = await conn.execute(
        "INSERT INTO charter.members (tenant_id, member_id, display_name, roles, slack_user_id) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, member_id) DO UPDATE SET "
        "display_name = EXCLUDED.display_name, roles = EXCLUDED.roles, "
        "slack_user_id = EXCLUDED.slack_user_id, active = true WHERE NOT charter.members.active",
        tenant_id,
        member_id,
        display_name,
        roles,
        slack_user_id,
    )
    return status.endswith(" 1")


async def set_roles(
    conn: asyncpg.Connection, tenant_id: str, member_id: str, roles: list[str]
) -> bool:
    status = await conn.execute(
        "UPDATE charter.members SET roles = $3 WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
        roles,
    )
    return status.endswith(" 1")


async def set_slack(
    conn: asyncpg.Connection, tenant_id: str, member_id: str, slack_user_id: str | None
) -> bool:
    status = await conn.execute(
        "UPDATE charter.members SET slack_user_id = $3 WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
        slack_user_id,
    )
    return status.endswith(" 1")


async def deactivate(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> bool:
    status = await conn.execute(
        "UPDATE charter.members SET active = false WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )
    return status.endswith(" 1")
