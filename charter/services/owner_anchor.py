"""The tenant's owner keys in the database, checked against its trust anchor.

The anchor (`charter.crypto.anchors`) is configuration, never a row: an administrator who
swaps an owner's public key in `member_keys` changes what the database says, not what the
worker was given. Until owners other than the first are proven by signed roster statements,
every owner's key must be listed by the anchor.
"""

from __future__ import annotations

import asyncpg

from charter.crypto.anchors import TrustAnchors


async def owner_keys(conn: asyncpg.Connection, tenant_id: str) -> list[tuple[str, str]]:
    """(key id, public key hex) of each own key (`member` kind) of the tenant's owners."""
    rows = await conn.fetch(
        "SELECT k.key_id, k.public_key FROM charter.member_keys k JOIN charter.members m "
        "ON m.tenant_id = k.tenant_id AND m.member_id = k.member_id "
        "WHERE k.tenant_id = $1 AND k.kind = 'member' AND 'owner' = ANY (m.roles) "
        "ORDER BY k.registered_at, k.key_id",
        tenant_id,
    )
    return [(r["key_id"], r["public_key"]) for r in rows]


async def unanchored_owner_keys(
    conn: asyncpg.Connection, tenant_id: str, anchors: TrustAnchors, *, development: bool
) -> list[str]:
    """One line per owner key the tenant's anchor does not list (AnchorMissing outside
    development when the tenant has none)."""
    return anchors.unanchored(tenant_id, await owner_keys(conn, tenant_id), development=development)
