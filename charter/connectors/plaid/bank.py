"""Bank balances (/accounts/balance/get) and transactions (/transactions/sync) from Plaid.

Plaid's API is read only for these products: neither credential below can move money.
Credentials, both in the encrypted store: `plaid` (the app's secret, as an API key) and
`plaid-item` (the access token of the linked bank Item). plaid-python is synchronous;
calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import plaid
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from pydantic import BaseModel, ConfigDict, Field

from charter.connectors.base import ConnectorAuthError, ConnectorError, ProviderUnavailable
from charter.storage.credential_vault import Credential
from schemas import BankAccount

PROVIDER = "plaid"
ITEM_CREDENTIAL = "plaid-item"

#: Plaid error codes that mean the credential, not the request, is the problem.
_AUTH_ERRORS = frozenset(
    {"INVALID_ACCESS_TOKEN", "INVALID_API_KEYS", "ITEM_LOGIN_REQUIRED", "ACCESS_NOT_GRANTED"}
)
#: Pages one read syncs at most; a longer backlog goes on at the next read.
_MAX_PAGES = 50
#: Paginations started again after Plaid reports the transactions changed during one.
_RESTARTS = 3
_MUTATED = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"

T = TypeVar("T")


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


def _body(exc: plaid.ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(exc: plaid.ApiException) -> str:
    return str(_body(exc).get("error_code", exc.status))


def _translated(exc: plaid.ApiException) -> ConnectorError:
    code = _code(exc)
    message = f"Plaid: {code}: {_body(exc).get('error_message', exc.reason)}"
    if code in _AUTH_ERRORS or exc.status in (401, 403):
        return ConnectorAuthError(message)
    if exc.status == 429 or (exc.status or 0) >= 500:
        return ProviderUnavailable(message)
    return ConnectorError(message)


class TransactionFeed(Protocol):
    """Where an Item's sync stands, and the lines it delivered (`charter.storage.bank_feed`
    through short transactions of its own, or in memory)."""

    async def cursor(self, item_id: str) -> str: ...

    async def apply(
        self,
        item_id: str,
        since: str,
        until: str,
        upserted: list[BankTransaction],
        removed: set[str],
    ) -> None: ...

    async def lines(self, item_id: str) -> list[BankTransaction]: ...


class MemoryFeed:
    """A feed kept for one reader's life: every read syncs from Plaid's first page."""

    def __init__(self) -> None:
        self._lines: dict[str, dict[str, BankTransaction]] = {}
        self._cursors: dict[str, str] = {}

    async def cursor(self, item_id: str) -> str:
        return self._cursors.get(item_id, "")

    async def apply(
        self,
        item_id: str,
        since: str,
        until: str,
        upserted: list[BankTransaction],
        removed: set[str],
    ) -> None:
        lines = self._lines.setdefault(item_id, {})
        lines.update({t.transaction_id: t for t in upserted})
        for transaction_id in removed:
            lines.pop(transaction_id, None)
        self._cursors[item_id] = until

    async def lines(self, item_id: str) -> list[BankTransaction]:
        return list(self._lines.get(item_id, {}).values())


@dataclass(frozen=True)
class _Synced:
    until: str
    upserted: list[BankTransaction]
    removed: set[str]
    complete: bool


class _Mutated(Exception):
    """Plaid's TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION: start again from the cursor."""


def _cash(account: Any) -> BankAccount | None:
    """A depository account's spendable balance (`available`, else `current`) in an ISO
    currency; None for anything else: a credit card's or a loan's balance is owed, not
    cash, and a balance Plaid does not know is not zero."""
    if str(account.type) != "depository":
        return None
    balances = account.balances
    balance = balances.available if balances.available is not None else balances.current
    if balance is None or not balances.iso_currency_code:
        return None
    return BankAccount(
        account_id=account.account_id,
        name=account.name,
        currency=balances.iso_currency_code,
        balance=Decimal(str(balance)),
    )


def _line(t: Any) -> BankTransaction:
    return BankTransaction(
        transaction_id=t.transaction_id,
        account_id=t.account_id,
        amount=Decimal(str(t.amount)),
        currency=t.iso_currency_code or "",
        description=t.name or "",
        on=t.date,
        pending=bool(t.pending),
    )


class PlaidBank:
    name = PROVIDER

    def __init__(
        self,
        settings: PlaidSettings,
        secret: Credential,
        item: Credential,
        feed: TransactionFeed | None = None,
    ) -> None:
        self._settings = settings
        self._secret = secret
        self._item = item
        self._feed = feed or MemoryFeed()

    def _token(self) -> str:
        token = self._item.secret.api_key
        if token is None:
            raise ConnectorAuthError(
                f"credential {self._item.credential_id} is not an access token"
            )
        return token.get_secret_value()

    async def read(self) -> tuple[list[BankAccount], list[BankTransaction]]:
        """Cash per depository account, and every transaction of the Item: the sync goes on
        from the stored cursor, and starts that pagination again when Plaid says the
        transactions changed during it."""
        accounts, item_id = await self._call(self._balances)
        since = await self._feed.cursor(item_id)
        for _ in range(_RESTARTS):
            try:
                synced = await self._call(lambda: self._sync_from(since))
            except _Mutated:
                continue
            break
        else:
            raise ProviderUnavailable(
                f"Plaid: the transactions changed during each of {_RESTARTS} paginations"
            )
        await self._feed.apply(item_id, since, synced.until, synced.upserted, synced.removed)
        if not synced.complete:
            raise ProviderUnavailable(
                f"Plaid: more than {_MAX_PAGES} pages of transactions to sync; the next read "
                "goes on from where this one stopped"
            )
        return accounts, await self._feed.lines(item_id)

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(work)
        except plaid.ApiException as exc:
            if _code(exc) == _MUTATED:
                raise _Mutated() from None
            raise _translated(exc) from None
        except plaid.ApiTypeError as exc:
            raise ConnectorError(f"Plaid: unexpected response ({exc})") from None

    def _balances(self) -> tuple[list[BankAccount], str]:
        api = _api(self._settings, self._secret)
        found = api.accounts_balance_get(AccountsBalanceGetRequest(access_token=self._token()))
        accounts = [cash for a in found.accounts if (cash := _cash(a)) is not None]
        return accounts, str(found.item.item_id)

    def _sync_from(self, cursor: str) -> _Synced:
        """Pages from `cursor` on, up to `_MAX_PAGES`: each line by transaction id, the
        latest report of it winning, a removal removing it."""
        api = _api(self._settings, self._secret)
        token = self._token()
        upserted: dict[str, BankTransaction] = {}
        removed: set[str] = set()
        for _ in range(_MAX_PAGES):
            page = api.transactions_sync(TransactionsSyncRequest(access_token=token, cursor=cursor))
            for t in [*page.added, *page.modified]:
                upserted[t.transaction_id] = _line(t)
                removed.discard(t.transaction_id)
            for r in page.removed:
                upserted.pop(r.transaction_id, None)
                removed.add(r.transaction_id)
            cursor = page.next_cursor
            if not page.has_more:
                return _Synced(cursor, list(upserted.values()), removed, complete=True)
        return _Synced(cursor, list(upserted.values()), removed, complete=False)
