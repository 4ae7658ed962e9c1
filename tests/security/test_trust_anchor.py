"""An owner key put into the database beside (or instead of) the anchored ones is named by
`charter audit verify`: the trust anchor is configuration, not a row."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.worker import Worker

from charter.config.settings import ConfigurationError
from charter.crypto.anchors import TrustAnchors
from charter.crypto.statements import key_id_for, public_hex
from charter.services import owner_anchor
from charter.storage import Database, member_keys
from tests.security.conftest import Verify
from tests.support.stolen_worker import (
    act_directly,
    binding_of,
    escalated,
    signed_by,
    slip_in_approval,
)


async def _anchor_today(db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with db.tenant(tenant) as conn:
        keys = await owner_anchor.owner_keys(conn, tenant)
    assert keys, "the seeded tenant's owner has an enrolled key"
    anchors = TrustAnchors({}).with_tenant(tenant, [public for _, public in keys])
    monkeypatch.setenv("CHARTER_TRUST_ANCHORS", anchors.dumps())


async def test_an_owner_key_swapped_in_the_database_is_named(
    db: Database, tenant: str, admin_dsn: str, verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _anchor_today(db, tenant, monkeypatch)
    code, out = await verify(tenant)
    assert code == 0 and "trust anchor" not in out
    intruder = await _register_intruder(admin_dsn, tenant)
    code, out = await verify(tenant)
    assert code == 1
    assert f"owner key {intruder} of tenant {tenant} is not in its trust anchor" in out


async def _register_intruder(admin_dsn: str, tenant: str) -> str:
    """An Ed25519 key of the administrator's, registered as the owner Maya's; its key id."""
    intruder = public_hex(Ed25519PrivateKey.generate())
    async with member_keys.owner_tenant(admin_dsn, tenant) as owner:
        await member_keys.register(
            owner,
            tenant,
            key_id=key_id_for(intruder),
            public_key=intruder,
            registered_by="admin",
            member_id="maya",
        )
    return key_id_for(intruder)


async def test_unreadable_anchors_are_one_line(
    tenant: str, verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARTER_TRUST_ANCHORS", "{not json")
    with pytest.raises(ConfigurationError, match="trust anchors are not JSON"):
        await verify(tenant)


async def test_act_refuses_while_an_owner_key_is_not_in_the_anchor(
    client: Client, worker: Worker, db: Database, tenant: str, admin_dsn: str
) -> None:
    """A properly signed approval, but an owner key the anchor does not list sits in the
    database: `act` executes nothing and says which key."""
    async with db.tenant(tenant) as conn:
        keys = await owner_anchor.owner_keys(conn, tenant)
    anchors = TrustAnchors({}).with_tenant(tenant, [public for _, public in keys])
    handle, ref, ps = await escalated(client, tenant)
    await slip_in_approval(db, ref, ps, signed_by("maya", binding_of(ref, ps)))
    intruder = await _register_intruder(admin_dsn, tenant)
    refused = await act_directly(db, ref, ps, anchors)
    assert refused.type == "NotAuthorised"
    assert f"owner key {intruder} of tenant {tenant} is not in its trust anchor" in str(refused)
    await handle.terminate("test over")
