"""Which connector reads and writes for a tenant, and with which credential.

Activities ask the registry and never import a concrete connector. Each capability of a
tenant (bank data, bills, payments) is served by the provider configured for it in
`charter.connectors`, or by the demo books when none is; actions other than paying a bill
(payroll, ad budgets) are the demo books' alone for now.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from pydantic import ValidationError

from charter.connectors import demo_auth
from charter.connectors.base import (
    BooksReader,
    BooksWriter,
    ConnectorAuthError,
    ConnectorError,
    UnsupportedAction,
    WriteLookup,
)
from charter.connectors.demo import DemoBooksReader, DemoBooksWriter
from charter.connectors.modern_treasury import (
    PROVIDER as MODERN_TREASURY,
)
from charter.connectors.modern_treasury import (
    ModernTreasuryPayments,
    ModernTreasurySettings,
    PaymentOrderLookup,
)
from charter.storage import connectors as config
from charter.storage.connectors import DEFAULT_PROVIDER, Capability, ConnectorConfig
from charter.storage.credentials import Credential, CredentialError, ScopedCredentials

#: What each provider can serve. The demo books stand in for all of them.
PROVIDERS: dict[str, frozenset[Capability]] = {
    DEFAULT_PROVIDER: frozenset(config.CAPABILITIES),
    MODERN_TREASURY: frozenset({"payments"}),
}

#: The capability an action needs. Actions not listed are performed by the demo books.
ACTION_CAPABILITY: dict[str, Capability] = {"schedule_payment": "payments"}

_DEMO_CREDENTIALS = frozenset({demo_auth.BANK, demo_auth.ADS})


def validated_settings(provider: str, capability: str, settings: dict[str, str]) -> dict[str, str]:
    """Check a configuration before it is stored; one clear error otherwise."""
    serves = PROVIDERS.get(provider)
    if serves is None:
        raise ConnectorError(
            f"unknown provider {provider!r}; known: {', '.join(sorted(PROVIDERS))}"
        )
    if capability not in serves:
        raise ConnectorError(
            f"{provider} cannot serve {capability!r}; it serves {', '.join(sorted(serves))}"
        )
    if provider == MODERN_TREASURY:
        try:
            ModernTreasurySettings.model_validate(settings)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConnectorError(f"{provider} settings: {problems}") from None
    elif settings:
        raise ConnectorError(f"{provider} takes no settings")
    return settings


@dataclass(frozen=True)
class WriteRoute:
    """Who performs an action, and the name of the write credential it needs."""

    config: ConnectorConfig
    credential_connector: str


async def write_route(conn: asyncpg.Connection, tenant_id: str, action: str) -> WriteRoute:
    capability = ACTION_CAPABILITY.get(action)
    if capability is None:
        serving = ConnectorConfig(tenant_id=tenant_id, capability="bank", provider=DEFAULT_PROVIDER)
    else:
        serving = await config.serving(conn, tenant_id, capability)
    if serving.provider == DEFAULT_PROVIDER:
        connector = demo_auth.WRITE_CONNECTOR.get(action)
        if connector is None:
            raise UnsupportedAction(f"{DEFAULT_PROVIDER} cannot perform {action!r}")
        return WriteRoute(serving, connector)
    if serving.provider == MODERN_TREASURY:
        return WriteRoute(serving, MODERN_TREASURY)
    raise ConnectorError(f"provider {serving.provider!r} has no writer")


def writer(
    route: WriteRoute, conn: asyncpg.Connection, tenant_id: str, credential: Credential
) -> BooksWriter:
    """The write half. `conn` is the transaction the action's result is recorded in."""
    if route.config.provider == MODERN_TREASURY:
        return ModernTreasuryPayments(
            ModernTreasurySettings.model_validate(route.config.settings), credential
        )
    return DemoBooksWriter(conn, tenant_id, credential)


def lookup(route: WriteRoute, credential: Credential) -> WriteLookup | None:
    """What finds a write of this route again, with a read credential; None where a write
    cannot outlive its unrecorded result (the demo books commit both together)."""
    if route.config.provider == MODERN_TREASURY:
        return PaymentOrderLookup(
            ModernTreasurySettings.model_validate(route.config.settings), credential
        )
    return None


@dataclass(frozen=True)
class ReadRoute:
    agent: str
    credential_connectors: tuple[str, ...]


async def read_route(conn: asyncpg.Connection, tenant_id: str, agent: str) -> ReadRoute:
    # Bank data and bills come from the demo books until another provider reads them; the
    # payments provider does not read for the observation.
    return ReadRoute(agent, demo_auth.READ_CONNECTORS.get(agent, ()))


def reader(
    route: ReadRoute,
    conn: asyncpg.Connection,
    tenant_id: str,
    credentials: dict[str, Credential],
) -> BooksReader:
    return DemoBooksReader(conn, tenant_id, credentials)


async def obtain(
    holder: ScopedCredentials, conn: asyncpg.Connection, tenant_id: str, connector: str
) -> Credential:
    """The tenant's credential for `connector` in the holder's scope, refreshed if it must be."""
    if connector in _DEMO_CREDENTIALS:
        return await demo_auth.obtain(holder, conn, tenant_id, connector)
    try:
        return await holder.obtain_for(conn, tenant_id, connector)
    except CredentialError as exc:
        raise ConnectorAuthError(str(exc)) from None
