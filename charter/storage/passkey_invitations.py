"""One-time invitations to enrol a passkey (migration 017_passkeys).

The owner creates them (on the administrator connection); the application reads them and
consumes one only through `charter.enrol_passkey`, which registers the passkey for the
invited member in the same statement. Only the token's sha256 is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg


@dataclass(frozen=True)
class Invitation:
    member_id: str
    display_name: str
    created_by: str
    expires_at: datetime
    used_at: datetime | None


async def create(
    owner: asyncpg.Connection,
    tenant_id: str,
    *,
    token_hash: str,
    member_id: str,
    created_by: str,
    valid_for: timedelta,
) -> datetime:
    """Record an invitation; when it expires."""
    expires_at: datetime = await owner.fetchval(
        "INSERT INTO charter.passkey_invitations (tenant_id, token_hash, member_id, created_by, "
        "expires_at) VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING expires_at",
        tenant_id,
        token_hash,
        member_id,
        created_by,
        valid_for,
    )
    return expires_at


async def get(conn: asyncpg.Connection, tenant_id: str, token_hash: str) -> Invitation | None:
    row = await conn.fetchrow(
        "SELECT i.member_id, m.display_name, i.created_by, i.expires_at, i.used_at FROM "
        "charter.passkey_invitations i JOIN charter.members m USING (tenant_id, member_id) "
        "WHERE i.tenant_id = $1 AND i.token_hash = $2",
        tenant_id,
        token_hash,
    )
    return Invitation(**dict(row)) if row else None


async def consume(
    conn: asyncpg.Connection,
    *,
    token_hash: str,
    key_id: str,
    public_key: str,
    credential_id: str,
    rp_id: str,
    origin: str,
) -> str | None:
    """Register the passkey for the invited member and use the invitation up, in the
    caller's tenant transaction: the member's id, or None if the invitation is unknown,
    used, expired or its member inactive (nothing changed)."""
    member_id: str | None = await conn.fetchval(
        "SELECT charter.enrol_passkey($1, $2, $3, $4, $5, $6)",
        token_hash,
        key_id,
        public_key,
        credential_id,
        rp_id,
        origin,
    )
    return member_id
