"""Signing keys as services: each key registered with its audit entry, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.config.settings import Settings
from charter.services import key_enrolment, membership
from charter.storage import Database, member_keys
from tests.support.audited import AppendRefused, RefusingAuditTrail, entries_of


async def test_enrolment_registers_the_key_with_its_entry(
    db: Database, admin_dsn: str, tenant: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHARTER_MEMBER_KEY_DIR", str(tmp_path))
    key_id = await key_enrolment.enrol_member(
        admin_dsn, tenant, "leo", actor="cli:maya", folder=Settings().member_key_folder
    )
    (entry,) = await entries_of(db, tenant, "member_key_registered")
    assert entry.snapshot == {"member_id": "leo", "key_id": key_id} and entry.actor == "cli:maya"
    async with db.tenant(tenant) as conn:
        key = await member_keys.get(conn, tenant, key_id)
    assert key is not None and key.member_id == "leo" and key.kind == "member"

    with pytest.raises(key_enrolment.NotAnActiveMember, match="'nobody' is not an active member"):
        await key_enrolment.enrol_member(
            admin_dsn, tenant, "nobody", actor="cli:maya", folder=Settings().member_key_folder
        )
    assert len(await entries_of(db, tenant, "member_key_registered")) == 1


async def test_an_enrolment_whose_entry_fails_registers_no_key(
    db: Database, admin_dsn: str, tenant: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHARTER_MEMBER_KEY_DIR", str(tmp_path))
    async with db.tenant(tenant) as conn:
        before = await member_keys.listed(conn, tenant)
    monkeypatch.setattr(key_enrolment, "audit_trail", RefusingAuditTrail())
    with pytest.raises(AppendRefused):
        await key_enrolment.enrol_member(
            admin_dsn, tenant, "maya", actor="cli:x", folder=Settings().member_key_folder
        )
    async with db.tenant(tenant) as conn:
        assert await member_keys.listed(conn, tenant) == before


async def test_a_front_door_registers_once_and_never_after_revocation(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    door = Ed25519PrivateKey.generate()
    key_id = await key_enrolment.register_front_door(
        admin_dsn, tenant, "slack", door, actor="cli:maya"
    )
    again = await key_enrolment.register_front_door(
        admin_dsn, tenant, "slack", door, actor="cli:maya"
    )
    assert again == key_id
    entries = [
        e
        for e in await entries_of(db, tenant, "front_door_key_registered")
        if e.snapshot["key_id"] == key_id
    ]
    assert [e.snapshot for e in entries] == [{"front_door": "slack", "key_id": key_id}] * 2

    await membership.revoke(
        admin_dsn,
        tenant,
        member_id=None,
        key_id=key_id,
        for_cause=False,
        keys_only=True,
        reason="",
        actor="cli:maya",
    )
    with pytest.raises(
        key_enrolment.FrontDoorKeyRevoked, match=f"front-door key {key_id} was revoked"
    ):
        await key_enrolment.register_front_door(admin_dsn, tenant, "slack", door, actor="cli:maya")
    async with db.tenant(tenant) as conn:
        key = await member_keys.get(conn, tenant, key_id)
    assert key is not None and key.revoked_at is not None
