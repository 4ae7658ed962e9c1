"""Which connector reads and writes for a tenant, and with which credential.

Activities ask the registry and never import a concrete connector. Each capability of a
tenant (bank data, bills, payments) is served by the provider configured for it in
`charter.connectors`, or by the demo books when none is: Plaid for bank data, QuickBooks
Online for bills, Modern Treasury for payments. Actions other than paying a bill (payroll,
ad budgets), and what the payroll and marketing agents read, are the demo books' alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from pydantic import BaseModel, ValidationError

from charter.connectors import demo_auth
from charter.connectors.base import (
    BooksReader,
    BooksWriter,
    ConnectorAuthError,
    ConnectorError,
    FactsAtExecution,
    FactsReadBefore,
    ProviderUnavailable,
    UnsupportedAction,
    WriteLookup,
)
from charter.connectors.calls import through, through_all
from charter.connectors.demo import DemoBooksReader, DemoBooksWriter
from charter.connectors.modern_treasury import (
    PROVIDER as MODERN_TREASURY,
)
from charter.connectors.modern_treasury import (
    ModernTreasuryPayments,
    ModernTreasurySettings,
    PaymentOrderLookup,
)
from charter.connectors.modern_treasury.counterparties import (
    verified_payees as mt_verified_payees,
)
from charter.connectors.payables import PayablesReader
from charter.connectors.plaid import ITEM_CREDENTIAL as PLAID_ITEM
from charter.connectors.plaid import PROVIDER as PLAID
from charter.connectors.plaid import PlaidBank, PlaidSettings
from charter.connectors.quickbooks import APP_CREDENTIAL as QUICKBOOKS_APP
from charter.connectors.quickbooks import PROVIDER as QUICKBOOKS
from charter.connectors.quickbooks import QuickBooksBills, QuickBooksSettings, refreshed
from charter.connectors.quickbooks.client import expiring
from charter.runtime.bulkheads import Bulkheads
from charter.storage import Database, plaid_cursors
from charter.storage import connector_config as config
from charter.storage.connector_config import DEFAULT_PROVIDER, Capability, ConnectorConfig
from charter.storage.credential_vault import (
    Credential,
    CredentialError,
    CredentialSecret,
    ScopedCredentials,
)
from schemas import Observation, Proposal

#: What each provider can serve. The demo books stand in for all of them.
PROVIDERS: dict[str, frozenset[Capability]] = {
    DEFAULT_PROVIDER: frozenset(config.CAPABILITIES),
    MODERN_TREASURY: frozenset({"payments"}),
    PLAID: frozenset({"bank"}),
    QUICKBOOKS: frozenset({"bills"}),
}

#: Settings each provider takes (checked before they are stored).
_SETTINGS: dict[str, type[BaseModel]] = {
    MODERN_TREASURY: ModernTreasurySettings,
    PLAID: PlaidSettings,
    QUICKBOOKS: QuickBooksSettings,
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
    model = _SETTINGS.get(provider)
    if model is not None:
        try:
            model.model_validate(settings)
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


def remote_provider(route: WriteRoute) -> str | None:
    """The provider a route's write goes out to over the network; None for the demo books,
    which write in Charter's own database, in the transaction that records the result."""
    return None if route.config.provider == DEFAULT_PROVIDER else route.config.provider


def provider_writer(route: WriteRoute, credential: Credential) -> BooksWriter:
    """The write half of a remote provider: it holds no connection, and is called with no
    transaction open."""
    if route.config.provider == MODERN_TREASURY:
        return ModernTreasuryPayments(
            ModernTreasurySettings.model_validate(route.config.settings), credential
        )
    raise ConnectorError(f"provider {route.config.provider!r} has no writer")


def books_writer(
    conn: asyncpg.Connection,
    tenant_id: str,
    credential: Credential,
    judged: Observation | None = None,
) -> BooksWriter:
    """The demo books' write half. `conn` is the transaction the action's result is recorded
    in; `judged` the records the action was last judged on (the demo books re-check them)."""
    return DemoBooksWriter(conn, tenant_id, credential, judged=judged)


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
    """Who serves each capability an agent reads, and the read credentials that needs."""

    agent: str
    bank: ConnectorConfig
    bills: ConnectorConfig
    payments: ConnectorConfig

    @property
    def composed(self) -> bool:
        """Payables reads from configured providers; other agents read the demo books."""
        return self.agent == "payables" and any(
            c.provider != DEFAULT_PROVIDER for c in (self.bank, self.bills, self.payments)
        )

    @property
    def credential_connectors(self) -> tuple[str, ...]:
        if not self.composed:
            return demo_auth.READ_CONNECTORS.get(self.agent, ())
        names: list[str] = []
        if DEFAULT_PROVIDER in (self.bank.provider, self.bills.provider):
            names.extend(demo_auth.READ_CONNECTORS.get(self.agent, ()))
        if self.bank.provider == PLAID:
            names.extend([PLAID, PLAID_ITEM])
        if self.bills.provider == QUICKBOOKS:
            names.extend([QUICKBOOKS, QUICKBOOKS_APP])
        if self.payments.provider == MODERN_TREASURY:
            names.append(MODERN_TREASURY)
        return tuple(names)


async def read_route(conn: asyncpg.Connection, tenant_id: str, agent: str) -> ReadRoute:
    return ReadRoute(
        agent,
        bank=await config.serving(conn, tenant_id, "bank"),
        bills=await config.serving(conn, tenant_id, "bills"),
        payments=await config.serving(conn, tenant_id, "payments"),
    )


async def read_credentials(
    holder: ScopedCredentials,
    db: Database,
    bulkheads: Bulkheads,
    tenant_id: str,
    route: ReadRoute,
) -> dict[str, Credential]:
    """Every read credential the route needs, expiring OAuth tokens refreshed and stored:
    read in a transaction, refreshed at the provider with none open, stored in another."""
    async with db.tenant(tenant_id) as conn:
        found = {
            name: await obtain(holder, conn, tenant_id, name)
            for name in route.credential_connectors
        }
    if QUICKBOOKS in found:
        settings = QuickBooksSettings.model_validate(route.bills.settings)
        found[QUICKBOOKS] = await quickbooks_tokens(
            holder, db, bulkheads, tenant_id, settings, found[QUICKBOOKS], found[QUICKBOOKS_APP]
        )
    return found


async def quickbooks_tokens(
    holder: ScopedCredentials,
    db: Database,
    bulkheads: Bulkheads | None,
    tenant_id: str,
    settings: QuickBooksSettings,
    tokens: Credential,
    app: Credential,
) -> Credential:
    """The QuickBooks token credential of `holder`'s scope, refreshed at Intuit (with no
    transaction open) if it expires soon, the rotated pair stored in a transaction of its own.

    One process refreshes at a time: Intuit rotates the refresh token, so a second refresh
    with the old one would fail (`invalid_grant`) and lose the connection. The refresh runs
    under an advisory lock per tenant, connector and scope, held on a connection of its own
    (no transaction spans the call); once it is held, the stored token is read again, and a
    token another process refreshed meanwhile is used as it is."""
    if not expiring(tokens):
        return tokens

    async def store(stale: Credential, fresh: CredentialSecret) -> Credential:
        async with db.tenant(tenant_id) as conn:
            return await holder.replace_secret(conn, stale, fresh)

    async def refresh() -> Credential:
        name = f"{tenant_id}/oauth-refresh/{QUICKBOOKS}/{holder.scope}"
        async with db.advisory_lock(name) as acquired:
            if not acquired:
                raise ProviderUnavailable("another process is refreshing the QuickBooks token")
            async with db.tenant(tenant_id) as conn:
                current = await obtain(holder, conn, tenant_id, QUICKBOOKS)
            return await refreshed(store, settings, current, app)

    if bulkheads is None:
        return await refresh()
    return await through(bulkheads, QUICKBOOKS, refresh)


def reader(
    conn: asyncpg.Connection, tenant_id: str, credentials: dict[str, Credential]
) -> BooksReader:
    """The demo books' reader, in the caller's transaction."""
    return DemoBooksReader(conn, tenant_id, credentials)


def _remote_providers(route: ReadRoute) -> list[str]:
    configured = (route.bank.provider, route.bills.provider, route.payments.provider)
    return [p for p in configured if p != DEFAULT_PROVIDER]


class _StoredCursors:
    """The tenant's Plaid sync cursors, each load and save a transaction of its own."""

    def __init__(self, db: Database, tenant_id: str) -> None:
        self._db = db
        self._tenant_id = tenant_id

    async def load(self, item_id: str) -> plaid_cursors.SyncState:
        async with self._db.tenant(self._tenant_id) as conn:
            return await plaid_cursors.load(conn, self._tenant_id, item_id)

    async def save(self, item_id: str, since: str, reached: plaid_cursors.SyncState) -> bool:
        async with self._db.tenant(self._tenant_id) as conn:
            return await plaid_cursors.save(conn, self._tenant_id, item_id, since, reached)


def _provider_reader(
    route: ReadRoute,
    tenant_id: str,
    credentials: dict[str, Credential],
    demo: Observation | None,
    cursors: _StoredCursors | None = None,
) -> PayablesReader:
    """The composed payables reader: it holds no connection (`demo`: what the demo books
    showed, read before)."""
    payments = route.payments
    verified = None
    if payments.provider == MODERN_TREASURY:
        mt_settings = ModernTreasurySettings.model_validate(payments.settings)
        mt_credential = credentials[MODERN_TREASURY]

        async def verified_payees() -> set[str]:
            return await mt_verified_payees(mt_settings, mt_credential)

        verified = verified_payees
    return PayablesReader(
        tenant_id,
        demo=demo,
        bank=PlaidBank(
            PlaidSettings.model_validate(route.bank.settings),
            credentials[PLAID],
            credentials[PLAID_ITEM],
            cursors,
        )
        if route.bank.provider == PLAID
        else None,
        bills=QuickBooksBills(
            QuickBooksSettings.model_validate(route.bills.settings),
            credentials[QUICKBOOKS],
            credentials[QUICKBOOKS_APP],
        )
        if route.bills.provider == QUICKBOOKS
        else None,
        verified_payees=verified,
    )


async def observe(
    holder: ScopedCredentials,
    db: Database,
    bulkheads: Bulkheads,
    tenant_id: str,
    agent: str,
    focus: list[str],
) -> Observation:
    """What the agent reads, from the providers the tenant configured (or the demo books).
    The demo books are read in a transaction; the providers with none open, each through
    its bulkhead."""
    async with db.tenant(tenant_id) as conn:
        route = await read_route(conn, tenant_id, agent)
    credentials = await read_credentials(holder, db, bulkheads, tenant_id, route)
    demo = None
    demo_names = demo_auth.READ_CONNECTORS.get(route.agent, ())
    reads_demo = not route.composed or DEFAULT_PROVIDER in (
        route.bank.provider,
        route.bills.provider,
    )
    if reads_demo and all(n in credentials for n in demo_names):
        async with db.tenant(tenant_id) as conn:
            demo = await reader(conn, tenant_id, credentials).snapshot(agent, focus)
    if not route.composed:
        assert demo is not None
        return demo
    composed = _provider_reader(route, tenant_id, credentials, demo, _StoredCursors(db, tenant_id))
    return await through_all(
        bulkheads, _remote_providers(route), lambda: composed.snapshot(agent, focus)
    )


async def facts_from_providers(
    holder: ScopedCredentials,
    db: Database,
    bulkheads: Bulkheads,
    tenant_id: str,
    agent: str,
    proposal: Proposal,
) -> Observation | None:
    """The proposal's records as the tenant's providers show them now, read with read-scoped
    credentials before the act's transaction opens; None when the demo books hold them (those
    are re-read under row locks inside that transaction: `reader_at_execution`). Everything
    afresh, not only the proposal's bill: the vendor's other bills are facts too."""
    async with db.tenant(tenant_id) as conn:
        route = await read_route(conn, tenant_id, agent)
    if not route.composed:
        return None
    return await observe(holder, db, bulkheads, tenant_id, agent, [])


def reader_at_execution(
    conn: asyncpg.Connection, tenant_id: str, read_before: Observation | None
) -> FactsAtExecution:
    """The reader an act re-reads its proposal's facts with, in the transaction `conn` of its
    write intent: the provider's facts read just before it (`facts_from_providers`), or the
    demo books' rows, locked in that transaction (they need no read credential)."""
    if read_before is not None:
        return FactsReadBefore(read_before)
    return DemoBooksReader(conn, tenant_id, {})


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
