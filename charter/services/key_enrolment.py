"""Enrolling signing keys: a member's own, or a front door's that signs on members' behalf.

The private key never leaves the machine that made it: a member's goes to the member's local
key file (readable by its owner only), a front door keeps its own. Only the public key is
registered, by the owner role on the administrator connection (the application role can read
public keys, never write one), and audited in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.crypto import statements
from charter.storage import audit_trail, member_keys, roster
from charter.storage.member_keys import owner_tenant


class EnrolmentRefused(Exception):
    """A key that may not be registered; the message says why."""


class NotAnActiveMember(EnrolmentRefused):
    pass


class FrontDoorKeyRevoked(EnrolmentRefused):
    pass


async def _register(
    owner: asyncpg.Connection,
    tenant_id: str,
    key: Ed25519PrivateKey,
    *,
    registered_by: str,
    member_id: str | None = None,
    front_door: str | None = None,
) -> str:
    """Register `key`'s public half for a member or a front door; its key id."""
    public = statements.public_hex(key)
    key_id = statements.key_id_for(public)
    await member_keys.register(
        owner,
        tenant_id,
        key_id=key_id,
        public_key=public,
        registered_by=registered_by,
        member_id=member_id,
        front_door=front_door,
    )
    return key_id


async def enroll(
    owner: asyncpg.Connection,
    tenant_id: str,
    member_id: str,
    *,
    registered_by: str,
    folder: Path,
) -> str:
    """A new key pair for an active member on this machine: the private key in the member's
    local key file, the public key registered (by the owner). Returns the key id."""
    if await roster.roles(owner, tenant_id, member_id) is None:
        raise NotAnActiveMember(f"{member_id!r} is not an active member of tenant {tenant_id!r}")
    key = statements.create_key(tenant_id, member_id, folder)
    return await _register(owner, tenant_id, key, registered_by=registered_by, member_id=member_id)


async def enroll_front_door(
    owner: asyncpg.Connection,
    tenant_id: str,
    front_door: str,
    key: Ed25519PrivateKey,
    *,
    registered_by: str,
) -> str:
    """Register a front door's public key (the front door keeps its private key); again is a
    no-op, but a key once revoked stays revoked (make the front door a new one)."""
    key_id = statements.key_id_for(statements.public_hex(key))
    existing = await member_keys.get(owner, tenant_id, key_id)
    if existing is not None and existing.revoked_at is not None:
        raise FrontDoorKeyRevoked(
            f"front-door key {key_id} was revoked; it cannot be registered again"
        )
    return await _register(
        owner, tenant_id, key, registered_by=registered_by, front_door=front_door
    )


async def _audited(
    admin_dsn: str,
    tenant_id: str,
    register: Callable[[asyncpg.Connection], Awaitable[str]],
    kind: str,
    subject: dict[str, str],
    *,
    actor: str,
) -> str:
    """Register a key and audit it as `kind` (the subject and the key id), in one owner
    transaction; the key id."""
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        key_id = await register(owner)
        await audit_trail.append(owner, tenant_id, kind, {**subject, "key_id": key_id}, actor=actor)
    return key_id


async def enrol_member(
    admin_dsn: str, tenant_id: str, member_id: str, *, actor: str, folder: Path
) -> str:
    """Enrol a member's new key: `member_key_registered`."""

    def register(owner: asyncpg.Connection) -> Awaitable[str]:
        return enroll(owner, tenant_id, member_id, registered_by=actor, folder=folder)

    subject = {"member_id": member_id}
    return await _audited(
        admin_dsn, tenant_id, register, "member_key_registered", subject, actor=actor
    )


async def register_front_door(
    admin_dsn: str, tenant_id: str, front_door: str, key: Ed25519PrivateKey, *, actor: str
) -> str:
    """Register a front door's key: `front_door_key_registered`."""

    def register(owner: asyncpg.Connection) -> Awaitable[str]:
        return enroll_front_door(owner, tenant_id, front_door, key, registered_by=actor)

    subject = {"front_door": front_door}
    return await _audited(
        admin_dsn, tenant_id, register, "front_door_key_registered", subject, actor=actor
    )
