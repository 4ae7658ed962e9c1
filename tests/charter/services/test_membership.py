"""Roster changes as services: each change and its audit entry commit together, or neither."""

from __future__ import annotations

from typing import Any

import pytest

from charter.services import membership
from charter.storage import Database, member_keys, roster
from tests.support.audited import AppendRefused, RefusingAuditTrail, entries_of


async def _add_ola(admin_dsn: str, tenant: str, roles: list[str]) -> None:
    await membership.add(
        admin_dsn, tenant, "ola", display_name="Ola", roles=roles, slack_user_id=None, actor="cli:x"
    )


async def _revoke(admin_dsn: str, tenant: str, member_id: str, **change: Any) -> membership.Revoked:
    how = {"for_cause": False, "keys_only": False, "reason": ""} | change
    return await membership.revoke(
        admin_dsn, tenant, member_id=member_id, key_id=None, actor="cli:maya", **how
    )


async def _member(db: Database, tenant: str, member_id: str) -> dict[str, Any] | None:
    async with db.tenant(tenant) as conn:
        return next(
            (m for m in await roster.listing(conn, tenant) if m["member_id"] == member_id), None
        )


async def test_add_writes_the_member_and_its_entry(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    await membership.add(
        admin_dsn,
        tenant,
        "ola",
        display_name="Ola Nordmann",
        roles=["approver", "finance"],
        slack_user_id="U0OLA",
        actor="cli:maya",
    )
    added = await _member(db, tenant, "ola")
    assert added is not None and added["active"] and list(added["roles"]) == ["approver", "finance"]
    (entry,) = await entries_of(db, tenant, "member_added")
    assert entry.actor == "cli:maya"
    assert entry.snapshot == {
        "member_id": "ola",
        "roles": ["approver", "finance"],
        "slack_user_id": "U0OLA",
    }

    with pytest.raises(membership.AlreadyMember, match="'ola' is already an active member"):
        await _add_ola(admin_dsn, tenant, ["viewer"])
    assert len(await entries_of(db, tenant, "member_added")) == 1


async def test_an_add_whose_entry_fails_adds_nobody(
    db: Database, admin_dsn: str, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(membership, "audit_trail", RefusingAuditTrail())
    with pytest.raises(AppendRefused):
        await _add_ola(admin_dsn, tenant, ["approver"])
    assert await _member(db, tenant, "ola") is None


async def test_roles_and_slack_id_change_with_their_entries(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    await membership.set_roles(admin_dsn, tenant, "sam", ["approver", "owner"], actor="cli:maya")
    await membership.set_slack(admin_dsn, tenant, "sam", None, actor="cli:maya")
    sam = await _member(db, tenant, "sam")
    assert (
        sam is not None
        and list(sam["roles"]) == ["approver", "owner"]
        and sam["slack_user_id"] is None
    )
    (roles,) = await entries_of(db, tenant, "member_roles_set")
    assert roles.snapshot == {"member_id": "sam", "roles": ["approver", "owner"]}
    assert roles.actor == "cli:maya"
    (slack,) = await entries_of(db, tenant, "member_slack_set")
    assert slack.snapshot == {"member_id": "sam", "slack_user_id": None}

    with pytest.raises(membership.NoSuchMember, match="no member 'nobody'"):
        await membership.set_roles(admin_dsn, tenant, "nobody", ["viewer"], actor="cli:x")
    with pytest.raises(membership.NoSuchMember):
        await membership.set_slack(admin_dsn, tenant, "nobody", "U0NOBODY", actor="cli:x")
    assert len(await entries_of(db, tenant, "member_roles_set")) == 1
    assert len(await entries_of(db, tenant, "member_slack_set")) == 1


async def test_a_role_change_whose_entry_fails_changes_nothing(
    db: Database, admin_dsn: str, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await _member(db, tenant, "sam")
    monkeypatch.setattr(membership, "audit_trail", RefusingAuditTrail())
    with pytest.raises(AppendRefused):
        await membership.set_roles(admin_dsn, tenant, "sam", ["viewer"], actor="cli:x")
    with pytest.raises(AppendRefused):
        await membership.set_slack(admin_dsn, tenant, "sam", "U0OTHER", actor="cli:x")
    assert await _member(db, tenant, "sam") == before


async def test_revoke_ends_the_membership_and_its_keys_with_one_entry(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    revoked = await _revoke(admin_dsn, tenant, "sam", for_cause=True, reason="laptop stolen")
    assert revoked.deactivated and len(revoked.keys) == 1
    sam = await _member(db, tenant, "sam")
    assert sam is not None and not sam["active"]
    (entry,) = await entries_of(db, tenant, "member_revoked")
    assert entry.snapshot == {
        "member_id": "sam",
        "keys": revoked.keys,
        "for_cause": True,
        "deactivated": True,
        "reason": "laptop stolen",
    }
    with pytest.raises(membership.NothingToRevoke, match="no active member or key 'nobody'"):
        await _revoke(admin_dsn, tenant, "nobody")
    assert len(await entries_of(db, tenant, "member_revoked")) == 1


async def test_a_revocation_whose_entry_fails_keeps_member_and_keys(
    db: Database, admin_dsn: str, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(membership, "audit_trail", RefusingAuditTrail())
    with pytest.raises(AppendRefused):
        await _revoke(admin_dsn, tenant, "sam", for_cause=True)
    sam = await _member(db, tenant, "sam")
    assert sam is not None and sam["active"]
    async with db.tenant(tenant) as conn:
        keys = [k for k in await member_keys.listed(conn, tenant) if k.member_id == "sam"]
    assert keys and all(k.revoked_at is None for k in keys)


async def test_listing_shows_members_and_front_doors(admin_dsn: str, tenant: str) -> None:
    listed = await membership.listing(admin_dsn, tenant)
    assert {"maya", "sam"} <= {m["member_id"] for m in listed.members}
    assert any(k.kind == "front_door" and k.front_door == "slack" for k in listed.keys)
