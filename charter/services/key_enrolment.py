"""Enrolling signing keys: a member's own, or a front door's that signs on members' behalf.

The private key never leaves the machine that made it: a member's goes to the member's local
key file (readable by its owner only), a front door keeps its own. Only the public key is
registered, by the owner role on the administrator connection (the application role can read
public keys, never write one), and audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.crypto import passkeys, statements
from charter.storage import Database, audit_trail, member_keys, passkey_invitations, roster
from charter.storage.member_keys import owner_tenant

#: How long a passkey invitation link stays usable, unless the owner says otherwise.
INVITATION_LIFETIME = timedelta(hours=24)


class EnrolmentRefused(Exception):
    """A key that may not be registered; the message says why."""


class NotAnActiveMember(EnrolmentRefused):
    pass


class FrontDoorKeyRevoked(EnrolmentRefused):
    pass


class InvitationUnusable(EnrolmentRefused):
    """A passkey invitation that is unknown, used, expired, or for an inactive member."""


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


# -- passkeys: a member's WebAuthn credential, enrolled through a one-time invitation ------


@dataclass(frozen=True)
class PasskeyInvitation:
    token: str
    """The secret half of the link: shown once, only its digest is stored."""
    member_id: str
    expires_at: datetime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def invite_passkey(
    admin_dsn: str,
    tenant_id: str,
    member_id: str,
    *,
    actor: str,
    valid_for: timedelta = INVITATION_LIFETIME,
) -> PasskeyInvitation:
    """A one-time invitation for an active member to enrol a passkey, created by the owner
    and audited (`passkey_invited`) in one transaction."""
    token = secrets.token_urlsafe(32)
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        if await roster.roles(owner, tenant_id, member_id) is None:
            raise NotAnActiveMember(
                f"{member_id!r} is not an active member of tenant {tenant_id!r}"
            )
        expires_at = await passkey_invitations.create(
            owner,
            tenant_id,
            token_hash=token_digest(token),
            member_id=member_id,
            created_by=actor,
            valid_for=valid_for,
        )
        subject = {"member_id": member_id, "expires_at": expires_at.isoformat()}
        await audit_trail.append(owner, tenant_id, "passkey_invited", subject, actor=actor)
    return PasskeyInvitation(token, member_id, expires_at)


async def invitation(db: Database, tenant_id: str, token: str) -> passkey_invitations.Invitation:
    """The invitation a link carries, if it can still be used; InvitationUnusable otherwise."""
    async with db.tenant(tenant_id) as conn:
        found = await passkey_invitations.get(conn, tenant_id, token_digest(token))
    if found is None:
        raise InvitationUnusable("this enrolment link is not valid for this tenant")
    if found.used_at is not None:
        raise InvitationUnusable("this enrolment link was used already; ask an owner for a new one")
    if found.expires_at <= datetime.now(found.expires_at.tzinfo):
        raise InvitationUnusable("this enrolment link has expired; ask an owner for a new one")
    return found


async def enrol_passkey(
    db: Database, tenant_id: str, token: str, passkey: passkeys.Passkey
) -> tuple[str, str]:
    """Register a verified passkey for the member the invitation names, consuming it, and
    audit it (`passkey_registered`) in the same transaction: (member id, key id)."""
    key_id = statements.key_id_for(passkey.public_key)
    async with db.tenant(tenant_id) as conn:
        member_id = await passkey_invitations.consume(
            conn,
            token_hash=token_digest(token),
            key_id=key_id,
            public_key=passkey.public_key,
            credential_id=passkey.credential_id,
            rp_id=passkey.rp_id,
            origin=passkey.origin,
        )
        if member_id is None:
            raise InvitationUnusable("this enrolment link is used, expired or not valid")
        subject = {"member_id": member_id, "key_id": key_id, "origin": passkey.origin}
        await audit_trail.append(conn, tenant_id, "passkey_registered", subject, actor=member_id)
    return member_id, key_id
