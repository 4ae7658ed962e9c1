"""Who belongs to a tenant, in which roles, under which Slack id, with which keys.

The roster is the owner's to change, never the application role's: every change here runs in
one transaction as the owner role on the administrator connection (`owner_tenant`), and its
audit entry is appended in that same transaction, so a change is never recorded without its
entry, nor an entry without its change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from charter.storage import audit_trail, member_keys, roster
from charter.storage.member_keys import MemberKey, owner_tenant

T = TypeVar("T")


class MembershipRefused(Exception):
    """A roster change that cannot be made; the message says why and changes nothing."""


class AlreadyMember(MembershipRefused):
    pass


class NoSuchMember(MembershipRefused):
    pass


class NothingToRevoke(MembershipRefused):
    """Neither an active key nor an active membership matched."""


@dataclass(frozen=True)
class Roster:
    """Every member of a tenant (active or not) and every key registered, front doors' too."""

    members: list[dict[str, Any]]
    keys: list[MemberKey]


@dataclass(frozen=True)
class Revoked:
    keys: list[str]
    deactivated: bool


async def listing(admin_dsn: str, tenant_id: str) -> Roster:
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        members = await roster.listing(owner, tenant_id)
        keys = await member_keys.listed(owner, tenant_id)
    return Roster(members, keys)


async def add(
    admin_dsn: str,
    tenant_id: str,
    member_id: str,
    *,
    display_name: str,
    roles: list[str],
    slack_user_id: str | None,
    actor: str,
) -> None:
    """Add a member (or re-activate one who left): `member_added`."""
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        added = await roster.add(
            owner,
            tenant_id,
            member_id,
            display_name=display_name,
            roles=roles,
            slack_user_id=slack_user_id,
        )
        if not added:
            raise AlreadyMember(f"{member_id!r} is already an active member of {tenant_id!r}")
        await audit_trail.append(
            owner,
            tenant_id,
            "member_added",
            {"member_id": member_id, "roles": roles, "slack_user_id": slack_user_id},
            actor=actor,
        )


async def _change(
    admin_dsn: str,
    tenant_id: str,
    member_id: str,
    write: Callable[[asyncpg.Connection, str, str, T], Awaitable[bool]],
    field: str,
    value: T,
    *,
    kind: str,
    actor: str,
) -> None:
    """Set one field of a member's row, and audit it as `kind` with the member and value."""
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        if not await write(owner, tenant_id, member_id, value):
            raise NoSuchMember(f"no member {member_id!r} in {tenant_id!r}")
        await audit_trail.append(
            owner, tenant_id, kind, {"member_id": member_id, field: value}, actor=actor
        )


async def set_roles(
    admin_dsn: str, tenant_id: str, member_id: str, roles: list[str], *, actor: str
) -> None:
    """Replace a member's roles: `member_roles_set`."""
    await _change(
        admin_dsn,
        tenant_id,
        member_id,
        roster.set_roles,
        "roles",
        roles,
        kind="member_roles_set",
        actor=actor,
    )


async def set_slack(
    admin_dsn: str, tenant_id: str, member_id: str, slack_user_id: str | None, *, actor: str
) -> None:
    """Set (or clear, with None) a member's Slack user id: `member_slack_set`."""
    await _change(
        admin_dsn,
        tenant_id,
        member_id,
        roster.set_slack,
        "slack_user_id",
        slack_user_id,
        kind="member_slack_set",
        actor=actor,
    )


async def revoke(
    admin_dsn: str,
    tenant_id: str,
    *,
    member_id: str | None,
    key_id: str | None,
    for_cause: bool,
    keys_only: bool,
    reason: str,
    actor: str,
) -> Revoked:
    """Revoke a member's active keys (or one key, a front door's too) and, unless
    `keys_only`, end the membership: `member_revoked`. For cause, nothing the keys ever
    signed counts any more."""
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        keys = await member_keys.revoke(
            owner, tenant_id, member_id=member_id, key_id=key_id, for_cause=for_cause, reason=reason
        )
        deactivated = (
            member_id is not None
            and not keys_only
            and await roster.deactivate(owner, tenant_id, member_id)
        )
        if not keys and not deactivated:
            who = member_id or key_id
            raise NothingToRevoke(f"no active member or key {who!r} in {tenant_id!r}")
        snapshot = {
            "member_id": member_id,
            "keys": keys,
            "for_cause": for_cause,
            "deactivated": deactivated,
            "reason": reason,
        }
        await audit_trail.append(owner, tenant_id, "member_revoked", snapshot, actor=actor)
    return Revoked(keys, deactivated)
