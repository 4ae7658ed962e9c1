"""Paying through Modern Treasury in tests: its stand-in set up for Acme, tenants configured
to pay through it, and the actions still pending in a tenant's trail."""

from __future__ import annotations

from collections.abc import Sequence

from charter.audit.chain import pending_actions
from charter.connectors.modern_treasury import PROVIDER
from charter.connectors.modern_treasury.payments import KEY_FIELD, REFERENCE_FIELD
from charter.demo.seed import TENANTS
from charter.storage import Database, audit_trail
from charter.storage import connector_config as config
from charter.storage import credential_vault as creds
from schemas import ProposalState
from tests.support.standins.modern_treasury import ModernTreasuryStandIn
from tests.support.vault import session_vault


def acme_payments_provider() -> ModernTreasuryStandIn:
    """A Modern Treasury stand-in with an operating account and every Acme vendor."""
    standin = ModernTreasuryStandIn()
    standin.add_internal_account("Operating")
    # Every Acme vendor has a verified account at the payments provider.
    for _, name, _, _ in TENANTS["acme"]["vendors"]:
        standin.add_counterparty(name)
    return standin


async def pay_through(
    db: Database, tenant: str, standin: ModernTreasuryStandIn, **settings: str
) -> None:
    """Configure `tenant` to pay bills through the stand-in, with a read and a write key."""
    keys = session_vault().keys
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
                # The stand-in's lists lag by `standin.list_lag` (0 unless a test says so).
                "list_lag_seconds": str(max(standin.list_lag, 0.5)),
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


async def pending(db: Database, tenant: str) -> list[str]:
    async with db.tenant(tenant) as conn:
        return pending_actions([e async for e in audit_trail.entries(conn, tenant)])


async def paid_by_one_order(
    db: Database,
    tenant: str,
    standin: ModernTreasuryStandIn,
    bill: str,
    results: Sequence[ProposalState],
) -> None:
    """Every run paying `bill` executed, all under its one key, by its one order."""
    (order,) = standin.orders_with(REFERENCE_FIELD, bill)
    assert [p.status for p in results] == ["executed"] * len(results), [p.failure for p in results]
    assert {p.action.connector_reference for p in results if p.action} == {order["id"]}
    assert {p.action.idempotency_key for p in results if p.action} == {order["metadata"][KEY_FIELD]}
    assert await pending(db, tenant) == []
