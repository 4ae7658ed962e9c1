"""Fixtures: a Modern Treasury stand-in per test, and tenants configured to pay through it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from charter.connectors.modern_treasury import PROVIDER
from charter.demo.seed import TENANTS
from charter.storage import Database
from charter.storage import connector_config as config
from charter.storage import credential_vault as creds
from tests.connectors.modern_treasury_standin import ModernTreasuryStandIn
from tests.connectors.standin_server import serving
from tests.storage.test_audit_cli import cli_env  # noqa: F401  (the CLI tests' environment)


@pytest.fixture
async def mt() -> AsyncIterator[ModernTreasuryStandIn]:
    standin = ModernTreasuryStandIn()
    standin.add_internal_account("Operating")
    # Every Acme vendor has a verified account at the payments provider.
    for _, name, _, _ in TENANTS["acme"]["vendors"]:
        standin.add_counterparty(name)
    async with serving(standin):
        yield standin


async def pay_through(
    db: Database, tenant: str, standin: ModernTreasuryStandIn, **settings: str
) -> None:
    """Configure `tenant` to pay bills through the stand-in, with a read and a write key."""
    keys = creds.CredentialVault().keys
    async with db.tenant(tenant) as conn:
        await config.configure(
            conn,
            tenant_id=tenant,
            capability="payments",
            provider=PROVIDER,
            settings={
                "organization_id": standin.organization_id,
                "originating_account_id": standin.internal_accounts[0]["id"],
                "base_url": standin.base_url,
                "timeout": "5",
                "max_retries": "2",
                **settings,
            },
            created_by="test",
        )
        for scope in ("read", "write"):
            await creds.add(
                conn,
                keys,
                tenant_id=tenant,
                connector=PROVIDER,
                scope=scope,  # type: ignore[arg-type]
                secret=creds.CredentialSecret(api_key=standin.add_key(scope)),
                created_by="test",
            )
