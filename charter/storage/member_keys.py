"""Members' public keys (and front doors' keys) that decision statements are verified against.

Reading is the application's; registering and revoking are the owner's, through
`owner_tenant` on the administrator connection: the application role holds SELECT only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from charter.storage.db import valid_tenant
from charter.storage.migrate import OWNER_ROLE

_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class MemberKey:
    key_id: str
    kind: str
    """`member` (a member's own key), `webauthn` (a member's passkey) or `front_door` (signs
    on members' behalf)."""
    member_id: str | None
    front_door: str | None
    public_key: str
    registered_at: datetime
    revoked_at: datetime | None
    revoked_for_cause: bool
    credential_id: str | None = None
    """A passkey's (`webauthn`) credential id, relying party id and origin."""
    rp_id: str | None = None
    origin: str | None = None

    def valid_at(self, instant: datetime) -> bool:
        """Whether a statement issued at `instant` may be trusted: registered by then, and
        not revoked for cause ever, nor revoked (routinely) before it."""
        # A minute's grace for the signer's clock: a member who decides right after enrolling
        # may be a little behind the database's.
        if instant + _GRACE < self.registered_at or self.revoked_for_cause:
            return False
        return self.revoked_at is None or instant < self.revoked_at


_COLUMNS = (
    "key_id, kind, member_id, front_door, public_key, registered_at, revoked_at, "
    "revoked_for_cause, credential_id, rp_id, origin"
)


def _key(row: asyncpg.Record) -> MemberKey:
    return MemberKey(**dict(row))


@asynccontextmanager
async def owner_tenant(admin_dsn: str, tenant_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction as the owner role, scoped to one tenant, on the administrator's DSN."""
    valid_tenant(tenant_id)
    conn = await asyncpg.connect(admin_dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
            await conn.execute("SELECT set_config('charter.tenant_id', $1, true)", tenant_id)
            yield conn
    finally:
        await conn.close()


async def get(conn: asyncpg.Connection, tenant_id: str, key_id: str) -> MemberKey | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM charter.member_keys WHERE tenant_id = $1 AND key_id = $2",
        tenant_id,
        key_id,
    )
    return _key(row) if row else None


async def by_credential(
    conn: asyncpg.Connection, tenant_id: str, credential_id: str
) -> MemberKey | None:
    """The passkey registered under a WebAuthn credential id."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM charter.member_keys WHERE tenant_id = $1 AND "
        "kind = 'webauthn' AND credential_id = $2",
        tenant_id,
        credential_id,
    )
    return _key(row) if row else None


async def listed(conn: asyncpg.Connection, tenant_id: str) -> list[MemberKey]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM charter.member_keys WHERE tenant_id = $1 "
        "ORDER BY registered_at, key_id",
        tenant_id,
    )
    return [_key(r) for r in rows]


async def register(
    owner: asyncpg.Connection,
    tenant_id: str,
    *,
    key_id: str,
    public_key: str,
    registered_by: str,
    member_id: str | None = None,
    front_door: str | None = None,
) -> None:
    """Register a member's key (`member_id`) or a front door's (`front_door`)."""
    await owner.execute(
        "INSERT INTO charter.member_keys (tenant_id, key_id, kind, member_id, front_door, "
        "public_key, registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (tenant_id, key_id) DO NOTHING",
        tenant_id,
        key_id,
        "member" if member_id is not None else "front_door",
        member_id,
        front_door,
        public_key,
        registered_by,
    )


async def revoke(
    owner: asyncpg.Connection,
    tenant_id: str,
    *,
    member_id: str | None = None,
    key_id: str | None = None,
    for_cause: bool,
    reason: str,
) -> list[str]:
    """Revoke a member's active keys (or one key); the ids revoked. For cause, a key revoked
    routinely before is raised to revoked for cause (its revocation time kept): nothing it
    ever signed counts any more."""
    rows = await owner.fetch(
        "UPDATE charter.member_keys SET revoked_at = coalesce(revoked_at, now()), "
        "revoked_for_cause = revoked_for_cause OR $4, revoke_reason = $5 WHERE tenant_id = $1 "
        "AND (revoked_at IS NULL OR ($4 AND NOT revoked_for_cause)) "
        "AND ($2::text IS NULL OR member_id = $2) AND ($3::text IS NULL OR key_id = $3) "
        "RETURNING key_id",
        tenant_id,
        member_id,
        key_id,
        for_cause,
        reason,
    )
    return [r["key_id"] for r in rows]
