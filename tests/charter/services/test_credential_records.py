"""Credentials and connectors as services: each record written with its audit entry, or not
at all; the entry names the record, never the secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from charter.services import connector_setup, credentials
from charter.storage import Database, connector_config
from charter.storage import credential_vault as creds
from tests.support.audited import AppendRefused, RefusingAuditTrail, entries_of
from tests.support.vault import session_vault

SECRET = creds.CredentialSecret(api_key=SecretStr("sk-test-never-in-the-audit-trail"))


async def _add(db: Database, tenant: str, **change: str) -> creds.CredentialInfo:
    fields = {"connector": "mercury", "scope": "read", "label": "ops", "member": "maya"} | change
    return await credentials.add(
        db,
        session_vault(),
        tenant_id=tenant,
        connector=fields["connector"],
        scope="write" if fields["scope"] == "write" else "read",
        secret=SECRET,
        label=fields["label"],
        member=fields["member"],
    )


async def _active(db: Database, tenant: str) -> list[str]:
    async with db.tenant(tenant) as conn:
        return [c.credential_id for c in await creds.list_credentials(conn, tenant)]


async def test_a_credential_is_added_and_revoked_with_its_entries(
    db: Database, tenant: str
) -> None:
    info = await _add(db, tenant)
    assert info.credential_id in await _active(db, tenant)
    (added,) = await entries_of(db, tenant, "credential_added")
    assert added.actor == "member:maya"
    assert added.snapshot == {
        "credential_id": info.credential_id,
        "connector": "mercury",
        "scope": "read",
        "kind": "api_key",
        "label": "ops",
        "kek_version": info.kek_version,
    }
    assert "sk-test" not in added.model_dump_json()

    revoked = await credentials.revoke(db, tenant, info.credential_id, member="sam")
    assert revoked.revoked_at is not None and info.credential_id not in await _active(db, tenant)
    (entry,) = await entries_of(db, tenant, "credential_revoked")
    assert entry.actor == "member:sam"
    assert entry.snapshot == {
        "credential_id": info.credential_id,
        "connector": "mercury",
        "scope": "read",
    }
    with pytest.raises(creds.CredentialRevoked):
        await credentials.revoke(db, tenant, info.credential_id, member="sam")
    assert len(await entries_of(db, tenant, "credential_revoked")) == 1


async def test_an_unknown_tenant_is_refused_in_one_line(db: Database) -> None:
    with pytest.raises(credentials.UnknownTenantOrConnector, match="unknown tenant 't-nobody'"):
        await _add(db, "t-nobody")


async def test_a_credential_whose_entry_fails_is_not_stored(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await _active(db, tenant)
    monkeypatch.setattr(credentials, "audit_trail", RefusingAuditTrail())
    with pytest.raises(AppendRefused):
        await _add(db, tenant)
    assert await _active(db, tenant) == before
    with pytest.raises(AppendRefused):
        await credentials.revoke(db, tenant, before[0], member="sam")
    assert await _active(db, tenant) == before


async def test_a_connector_is_configured_and_removed_with_its_entries(
    db: Database, tenant: str
) -> None:
    missing = await connector_setup.configure(
        db,
        tenant_id=tenant,
        capability="bank",
        provider="mercury",
        settings={"account_id": "acc-1"},
        member="maya",
    )
    assert missing == ["read", "write"]
    await _add(db, tenant)
    served = {s.capability: s for s in await connector_setup.serving(db, tenant)}
    assert served["bank"].provider == "mercury" and served["bank"].missing_credentials == ["write"]
    assert served["bills"].configured is None and served["bills"].missing_credentials == []
    (configured,) = await entries_of(db, tenant, "connector_configured")
    assert configured.actor == "member:maya"
    assert configured.snapshot == {
        "capability": "bank",
        "provider": "mercury",
        "settings": {"account_id": "acc-1"},
    }

    removed = await connector_setup.remove(db, tenant, "bank", member="sam")
    assert removed.provider == "mercury"
    (entry,) = await entries_of(db, tenant, "connector_removed")
    assert entry.snapshot == {"capability": "bank", "provider": "mercury"}
    assert entry.actor == "member:sam"
    with pytest.raises(connector_setup.NotConfigured, match=f"bank of {tenant} has no connector"):
        await connector_setup.remove(db, tenant, "bank", member="sam")
    assert len(await entries_of(db, tenant, "connector_removed")) == 1


async def test_a_connector_whose_entry_fails_is_not_configured(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connector_setup, "audit_trail", RefusingAuditTrail())
    with pytest.raises(AppendRefused):
        await connector_setup.configure(
            db, tenant_id=tenant, capability="bank", provider="mercury", settings={}, member="x"
        )
    async with db.tenant(tenant) as conn:
        assert await connector_config.configured(conn, tenant) == []
    with pytest.raises(connector_setup.UnknownTenant, match="unknown tenant 't-nobody'"):
        await connector_setup.configure(
            db, tenant_id="t-nobody", capability="bank", provider="mercury", settings={}, member="x"
        )
