"""Which provider serves each capability of a tenant: chosen, handed back, and audited.

Settings are identifiers and addresses, never secrets (the provider's keys go in as
credentials, a read and a write record apart). Each change is written with its audit entry in
one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from charter.crypto.envelope import Scope
from charter.storage import Database, audit_trail
from charter.storage import connector_config as config
from charter.storage import credential_vault as creds
from charter.storage.connector_config import Capability, ConnectorConfig


class UnknownTenant(Exception):
    """The database refused the configuration: no such tenant."""


class NotConfigured(Exception):
    """The capability has no provider configured: the demo books serve it already."""


@dataclass(frozen=True)
class Served:
    """Who serves a capability, and which of its credentials are still missing."""

    capability: Capability
    provider: str
    configured: ConnectorConfig | None
    """None: nobody chose, the demo books serve it."""
    missing_credentials: list[Scope]


async def missing_credentials(
    conn: asyncpg.Connection, tenant_id: str, provider: str
) -> list[Scope]:
    """The scopes `provider` has no active credential for (the demo books need none here:
    theirs are seeded with the demo company)."""
    if provider == config.DEFAULT_PROVIDER:
        return []
    scopes: tuple[Scope, ...] = ("read", "write")
    return [s for s in scopes if await creds.active_id(conn, tenant_id, provider, s) is None]


async def configure(
    db: Database,
    *,
    tenant_id: str,
    capability: Capability,
    provider: str,
    settings: dict[str, str],
    member: str,
) -> list[Scope]:
    """Serve `capability` with `provider` (replacing the one configured), chosen by `member`:
    `connector_configured`. Returns the credential scopes the provider still lacks."""
    try:
        async with db.tenant(tenant_id) as conn:
            configured = await config.configure(
                conn,
                tenant_id=tenant_id,
                capability=capability,
                provider=provider,
                settings=settings,
                created_by=member,
            )
            await audit_trail.append(
                conn,
                tenant_id,
                "connector_configured",
                configured.model_dump(mode="json", include={"capability", "provider", "settings"}),
                actor=f"member:{member}",
            )
            return await missing_credentials(conn, tenant_id, provider)
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError):
        raise UnknownTenant(f"refused: unknown tenant {tenant_id!r}") from None


async def remove(
    db: Database, tenant_id: str, capability: Capability, *, member: str
) -> ConnectorConfig:
    """Hand `capability` back to the demo books: `connector_removed`. The provider's
    credentials are kept until revoked. NotConfigured if none was configured."""
    async with db.tenant(tenant_id) as conn:
        removed = await config.remove(conn, tenant_id, capability)
        if removed is None:
            raise NotConfigured(f"{capability} of {tenant_id} has no connector configured")
        await audit_trail.append(
            conn,
            tenant_id,
            "connector_removed",
            {"capability": removed.capability, "provider": removed.provider},
            actor=f"member:{member}",
        )
    return removed


async def serving(db: Database, tenant_id: str) -> list[Served]:
    """Every capability with the provider serving it, configured or by default."""
    async with db.tenant(tenant_id) as conn:
        chosen = {c.capability: c for c in await config.configured(conn, tenant_id)}
        served = []
        for capability in config.CAPABILITIES:
            c = chosen.get(capability)
            provider = c.provider if c else config.DEFAULT_PROVIDER
            missing = await missing_credentials(conn, tenant_id, provider)
            served.append(Served(capability, provider, c, missing))
    return served
