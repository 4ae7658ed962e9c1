"""Bank balances (/accounts/balance/get) and transactions (/transactions/sync) from Plaid.

Cash is what a depository account can spend: credit cards, loans and investments are not
cash and are left out; each account keeps its own currency (nobody adds EUR to USD), and
its balance is Plaid's `available` (what can be spent now), or `current` where the
institution reports no `available`, or 0 where it reports neither (nothing known to be
spendable). An account whose currency Plaid does not know is left out, not taken for USD.

Transactions: /transactions/sync from the cursor stored for the tenant and Item (from the
start the first time; the cursor and the transactions it reached stored after Plaid
answered, never with a transaction open across the call), page after page, each page's `added`,
`modified` and `removed` applied by `transaction_id`. Plaid's
TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION (the Item changed while paging) restarts from
the cursor the sync began with, a few times; more pages than the bound end the read as
`ProviderUnavailable` (retried; what it reached is stored, so the next read goes on from
there), and so do more restarts, never as a failure of the run.

Plaid's API is read only for these products: neither credential below can move money.
Credentials, both in the encrypted store: `plaid` (the app's secret, as an API key) and
`plaid-item` (the access token of the linked bank Item). plaid-python is synchronous;
calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import plaid
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from pydantic import BaseModel, ConfigDict, Field

from charter.connectors.base import ConnectorAuthError, ConnectorError, ProviderUnavailable
from charter.storage.credential_vault import Credential
from charter.storage.plaid_cursors import SyncState
from schemas import BankAccount

PROVIDER = "plaid"
ITEM_CREDENTIAL = "plaid-item"

#: Plaid error codes that mean the credential, not the request, is the problem.
_AUTH_ERRORS = frozenset(
    {"INVALID_ACCESS_TOKEN", "INVALID_API_KEYS", "ITEM_LOGIN_REQUIRED", "ACCESS_NOT_GRANTED"}
)
_MAX_PAGES = 50
_MAX_RESTARTS = 3
_MUTATED = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"
#: Plaid's account type whose balance is cash.
_CASH = "depository"


class PlaidSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    host: str = Field(default=plaid.Environment.Production, description="Plaid's API host.")


@dataclass(frozen=True)
class BankTransaction:
    transaction_id: str
    account_id: str
    amount: Decimal
    """Positive when money left the account (Plaid's convention)."""
    currency: str
    description: str
    on: date
    pending: bool


def _api(settings: PlaidSettings, secret: Credential) -> plaid_api.PlaidApi:
    key = secret.secret.api_key
    if key is None:
        raise ConnectorAuthError(f"credential {secret.credential_id} is not Plaid's secret")
    configuration = plaid.Configuration(
        host=settings.host,
        api_key={"clientId": settings.client_id, "secret": key.get_secret_value()},
    )
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))


def _translated(exc: plaid.ApiException) -> ConnectorError:
    try:
        body: dict[str, Any] = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error_code", exc.status))
    message = f"Plaid: {code}: {body.get('error_message', exc.reason)}"
    if code in _AUTH_ERRORS or exc.status in (401, 403):
        return ConnectorAuthError(message)
    if exc.status == 429 or (exc.status or 0) >= 500:
        return ProviderUnavailable(message)
    return ConnectorError(message)


class SyncCursors(Protocol):
    """Where each Item's sync stands for the tenant, each call a transaction of its own."""

    async def load(self, item_id: str) -> SyncState: ...

    async def save(self, item_id: str, since: str, reached: SyncState) -> bool: ...


class _PageBound(Exception):
    def __init__(self, reached: SyncState) -> None:
        super().__init__("page bound")
        self.reached = reached


class PlaidBank:
    name = PROVIDER

    def __init__(
        self,
        settings: PlaidSettings,
        secret: Credential,
        item: Credential,
        cursors: SyncCursors | None = None,
    ) -> None:
        self._settings = settings
        self._secret = secret
        self._item = item
        self._cursors = cursors

    def _token(self) -> str:
        token = self._item.secret.api_key
        if token is None:
            raise ConnectorAuthError(
                f"credential {self._item.credential_id} is not an access token"
            )
        return token.get_secret_value()

    async def read(self) -> tuple[list[BankAccount], list[BankTransaction]]:
        """Balances, then the transactions from the Item's stored cursor on (from the start
        without a store), the state reached stored after Plaid answered."""
        try:
            api = _api(self._settings, self._secret)
            accounts, item_id = await asyncio.to_thread(self._balances, api)
            since = SyncState() if self._cursors is None else await self._cursors.load(item_id)
            try:
                reached = await asyncio.to_thread(self._sync, api, since)
            except _PageBound as bound:
                # Keep what the bounded read reached: the next read goes on from there.
                await self._store(item_id, since, bound.reached)
                raise ProviderUnavailable(
                    f"Plaid: more than {_MAX_PAGES} pages of transactions in one read; "
                    "the next read goes on from where this one stopped"
                ) from None
            await self._store(item_id, since, reached)
        except plaid.ApiException as exc:
            raise _translated(exc) from None
        except plaid.ApiTypeError as exc:
            raise ConnectorError(f"Plaid: unexpected response ({exc})") from None
        return accounts, [_transaction(t) for t in reached.transactions.values()]

    async def _store(self, item_id: str, since: SyncState, reached: SyncState) -> None:
        if self._cursors is not None and reached.cursor != since.cursor:
            await self._cursors.save(item_id, since.cursor, reached)

    def _balances(self, api: plaid_api.PlaidApi) -> tuple[list[BankAccount], str]:
        balances = api.accounts_balance_get(AccountsBalanceGetRequest(access_token=self._token()))
        accounts = [a for a in (_cash(account) for account in balances.accounts) if a is not None]
        return accounts, str(balances.item.item_id)

    def _sync(self, api: plaid_api.PlaidApi, since: SyncState) -> SyncState:
        """From `since` to the end; restarted from `since` when Plaid says the Item changed
        while paging (its TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION)."""
        for _ in range(_MAX_RESTARTS):
            try:
                return _synced(api, self._token(), since)
            except plaid.ApiException as exc:
                if _error_code(exc) != _MUTATED:
                    raise
        raise ProviderUnavailable(
            f"Plaid: transactions kept changing while paged ({_MAX_RESTARTS} restarts); "
            "reading again later"
        )


def _cash(account: Any) -> BankAccount | None:
    """A depository account as cash in its own currency; None for any other account."""
    if str(account.type) != _CASH:
        return None
    balances = account.balances
    currency = balances.get("iso_currency_code") or balances.get("unofficial_currency_code")
    if not currency:
        return None
    available, current = balances.get("available"), balances.get("current")
    spendable = available if available is not None else current
    return BankAccount(
        account_id=account.account_id,
        name=account.name,
        currency=str(currency),
        balance=Decimal(str(spendable)) if spendable is not None else Decimal(0),
    )


def _error_code(exc: plaid.ApiException) -> str:
    try:
        body: dict[str, Any] = json.loads(exc.body or "{}")
    except ValueError:
        return ""
    return str(body.get("error_code", ""))


def _synced(api: plaid_api.PlaidApi, token: str, since: SyncState) -> SyncState:
    """Plaid's changes from `since` on, page after page, applied by transaction_id."""
    found = dict(since.transactions)
    cursor = since.cursor
    for _ in range(_MAX_PAGES):
        page = api.transactions_sync(TransactionsSyncRequest(access_token=token, cursor=cursor))
        for t in [*page.added, *page.modified]:
            found[t.transaction_id] = {
                "transaction_id": t.transaction_id,
                "account_id": t.account_id,
                "amount": str(t.amount),
                "currency": t.iso_currency_code or t.unofficial_currency_code or "",
                "description": t.name or "",
                "on": t.date.isoformat(),
                "pending": bool(t.pending),
            }
        for r in page.removed:
            found.pop(r.transaction_id, None)
        cursor = page.next_cursor
        if not page.has_more:
            return SyncState(cursor, found)
    raise _PageBound(SyncState(cursor, found))


def _transaction(stored: dict[str, Any]) -> BankTransaction:
    return BankTransaction(
        transaction_id=str(stored["transaction_id"]),
        account_id=str(stored["account_id"]),
        amount=Decimal(str(stored["amount"])),
        currency=str(stored["currency"]),
        description=str(stored["description"]),
        on=date.fromisoformat(str(stored["on"])),
        pending=bool(stored["pending"]),
    )
