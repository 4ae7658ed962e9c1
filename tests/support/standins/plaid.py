"""A local Plaid for tests: /accounts/balance/get and /transactions/sync.

plaid-python talks to it through `Configuration(host=...)`. What it keeps to:
- client id and secret in the PLAID-CLIENT-ID / PLAID-SECRET headers (or the body), the
  Item's access token in the body;
- Plaid's error body (`error_type`, `error_code`, `error_message`, `display_message`,
  `request_id`) with its status codes: INVALID_API_KEYS, INVALID_ACCESS_TOKEN,
  ITEM_LOGIN_REQUIRED (the bank connection needs the user again: a revoked consent),
  RATE_LIMIT_EXCEEDED (429);
- /transactions/sync pages with `cursor`, `next_cursor`, `has_more` and `count`: a cursor
  is a position in the Item's history of changes, each page the `added`, `modified` and
  `removed` (by `transaction_id`) since it; `mutate_during_pagination` answers a page after
  the first with TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION (400), as Plaid does when the
  Item's transactions change while a client pages (the client restarts from the cursor it
  began with);
- accounts of every type (depository, credit, loan, investment), in their currency, with
  `available` and `current` that may be null (Plaid: `available` null where the institution
  does not report it, `current` null for some accounts).
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web


@dataclass
class PlaidStandIn:
    client_id: str = "plaid-client-standin"
    secret: str = field(default_factory=lambda: secrets.token_hex(15))
    access_tokens: set[str] = field(default_factory=set)
    login_required: bool = False
    rate_limited: int = 0
    accounts: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """The Item's history: ("added" | "modified" | "removed", transaction), in order."""
    mutate_during_pagination: int = 0
    sync_requests: list[str] = field(default_factory=list)
    """The cursor of every /transactions/sync request, in order."""
    page_size: int = 2
    base_url: str = ""

    def link(self) -> str:
        token = f"access-sandbox-{uuid.uuid4()}"
        self.access_tokens.add(token)
        return token

    def add_account(
        self,
        name: str,
        current: str | None,
        currency: str = "USD",
        *,
        available: str | None = "same",
        kind: str = "depository",
        subtype: str = "checking",
    ) -> str:
        account_id = secrets.token_urlsafe(18)
        if available == "same":
            available = current
        self.accounts.append(
            {
                "account_id": account_id,
                "balances": {
                    "available": None if available is None else float(Decimal(available)),
                    "current": None if current is None else float(Decimal(current)),
                    "limit": None,
                    "iso_currency_code": currency,
                    "unofficial_currency_code": None,
                },
                "mask": "4021",
                "name": name,
                "official_name": name,
                "type": kind,
                "subtype": subtype,
            }
        )
        return account_id

    def modify(self, transaction_id: str, amount: str) -> None:
        found = next(t for t in self.transactions if t["transaction_id"] == transaction_id)
        found["amount"] = float(Decimal(amount))
        self.changes.append(("modified", dict(found)))

    def remove(self, transaction_id: str) -> None:
        found = next(t for t in self.transactions if t["transaction_id"] == transaction_id)
        self.transactions.remove(found)
        self.changes.append(("removed", found))

    def add_outflow(self, account_id: str, amount: str, name: str, currency: str = "USD") -> str:
        transaction_id = secrets.token_urlsafe(18)
        self.transactions.append(
            {
                "account_id": account_id,
                "amount": float(Decimal(amount)),
                "iso_currency_code": currency,
                "unofficial_currency_code": None,
                "category": None,
                "category_id": None,
                "check_number": None,
                "date": date.today().isoformat(),
                "datetime": None,
                "authorized_date": date.today().isoformat(),
                "authorized_datetime": None,
                "location": {
                    "address": None,
                    "city": None,
                    "region": None,
                    "postal_code": None,
                    "country": None,
                    "lat": None,
                    "lon": None,
                    "store_number": None,
                },
                "name": name,
                "merchant_name": None,
                "merchant_entity_id": None,
                "logo_url": None,
                "website": None,
                "payment_meta": {
                    "by_order_of": None,
                    "payee": None,
                    "payer": None,
                    "payment_method": None,
                    "payment_processor": None,
                    "ppd_id": None,
                    "reason": None,
                    "reference_number": None,
                },
                "payment_channel": "other",
                "pending": False,
                "pending_transaction_id": None,
                "account_owner": None,
                "transaction_id": transaction_id,
                "transaction_code": None,
                "transaction_type": "special",
                "personal_finance_category": None,
                "counterparties": [],
            }
        )
        self.changes.append(("added", self.transactions[-1]))
        return transaction_id

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/accounts/balance/get", self._balances)
        app.router.add_post("/transactions/sync", self._sync)
        return app

    async def _authorised(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return {}, _error(400, "INVALID_REQUEST", "INVALID_BODY", "body is not JSON")
        client_id = request.headers.get("PLAID-CLIENT-ID", body.get("client_id"))
        secret = request.headers.get("PLAID-SECRET", body.get("secret"))
        if client_id != self.client_id or secret != self.secret:
            return body, _error(
                400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided"
            )
        if body.get("access_token") not in self.access_tokens:
            return body, _error(
                400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN", "provided access token is invalid"
            )
        if self.login_required:
            return body, _error(
                400,
                "ITEM_ERROR",
                "ITEM_LOGIN_REQUIRED",
                "the login details of this item have changed (credentials, MFA, or required "
                "user action) and a user login is required to update this information",
            )
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return body, _error(429, "RATE_LIMIT_EXCEEDED", "BALANCE_LIMIT", "rate limit exceeded")
        return body, None

    def _item(self) -> dict[str, Any]:
        return {
            "item_id": "item-standin",
            "institution_id": "ins_standin",
            "webhook": "",
            "error": None,
            "available_products": ["balance"],
            "billed_products": ["transactions"],
            "consent_expiration_time": None,
            "update_type": "background",
        }

    async def _balances(self, request: web.Request) -> web.Response:
        _, refused = await self._authorised(request)
        if refused is not None:
            return refused
        return web.json_response(
            {"accounts": self.accounts, "item": self._item(), "request_id": _request_id()}
        )

    async def _sync(self, request: web.Request) -> web.Response:
        body, refused = await self._authorised(request)
        if refused is not None:
            return refused
        cursor = body.get("cursor") or ""
        self.sync_requests.append(cursor)
        if cursor and self.mutate_during_pagination > 0:
            self.mutate_during_pagination -= 1
            return _error(
                400,
                "TRANSACTIONS_ERROR",
                "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
                "Underlying transaction data changed since last page was fetched. Please "
                "restart pagination from last update.",
            )
        start = int(cursor) if cursor.isdigit() else 0
        count = min(int(body.get("count") or self.page_size), self.page_size)
        page = self.changes[start : start + count]
        end = start + len(page)
        return web.json_response(
            {
                "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
                "accounts": self.accounts,
                "added": [t for kind, t in page if kind == "added"],
                "modified": [t for kind, t in page if kind == "modified"],
                "removed": [
                    {"transaction_id": t["transaction_id"], "account_id": t["account_id"]}
                    for kind, t in page
                    if kind == "removed"
                ],
                "next_cursor": str(end),
                "has_more": end < len(self.changes),
                "request_id": _request_id(),
            }
        )


def _request_id() -> str:
    return secrets.token_hex(8)


def _error(status: int, kind: str, code: str, message: str) -> web.Response:
    return web.json_response(
        {
            "error_type": kind,
            "error_code": code,
            "error_message": message,
            "display_message": None,
            "request_id": _request_id(),
        },
        status=status,
    )
