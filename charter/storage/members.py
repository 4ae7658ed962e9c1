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
