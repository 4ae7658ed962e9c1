"""Reading bills and vendors from QuickBooks Online. No method here writes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from quickbooks.objects.bill import Bill as QBBill
from quickbooks.objects.vendor import Vendor as QBVendor
from requests import RequestException

from charter.connectors.base import ConnectorAuthError, ConnectorError, ProviderUnavailable
from charter.connectors.quickbooks.client import QuickBooksSettings, auth_client
from charter.storage.credential_vault import Credential

_PAGE = 100
#: Intuit's error code for a throttled request (HTTP 429, ThrottleExceeded).
_THROTTLED = 3001


@dataclass(frozen=True)
class Bill:
    bill_id: str
    number: str
    vendor_id: str
    vendor_name: str
    total: Decimal
    balance: Decimal
    currency: str
    due_date: date
    memo: str


@dataclass(frozen=True)
class VendorRecord:
    vendor_id: str
    name: str
    active: bool


class QuickBooksBills:
    name = "quickbooks"

    def __init__(self, settings: QuickBooksSettings, tokens: Credential, app: Credential) -> None:
        self._settings = settings
        self._tokens = tokens
        self._app = app

    async def read(self) -> tuple[list[Bill], list[VendorRecord]]:
        try:
            return await asyncio.to_thread(self._read)
        except AuthorizationException:
            raise ConnectorAuthError(
                f"QuickBooks rejected credential {self._tokens.credential_id} (401)"
            ) from None
        except QuickbooksException as exc:
            if exc.error_code == _THROTTLED:
                raise ProviderUnavailable(f"QuickBooks: {exc.message}") from None
            raise ConnectorError(f"QuickBooks: {exc.message} ({exc.error_code})") from None
        except RequestException as exc:
            raise ProviderUnavailable(f"QuickBooks: {type(exc).__name__}") from None

    def _client(self) -> QuickBooks:
        client = QuickBooks(
            auth_client=auth_client(self._settings, self._tokens.secret, self._app),
            refresh_token=None,
            company_id=self._settings.realm_id,
            minorversion=self._settings.minor_version,
            use_decimal=True,
        )
        if self._settings.api_url:
            client.api_url_v3 = self._settings.api_url.rstrip("/") + "/v3"
        return client

    def _read(self) -> tuple[list[Bill], list[VendorRecord]]:
        client = self._client()
        vendors = [
            VendorRecord(vendor_id=str(v.Id), name=str(v.DisplayName), active=bool(v.Active))
            for v in _all(QBVendor, client)
        ]
        bills = [_bill(b) for b in _all(QBBill, client)]
        return bills, vendors


def _all(kind: Any, client: QuickBooks) -> list[Any]:
    """Every record of a kind, a page at a time (QuickBooks caps a query at 1000 rows)."""
    found: list[Any] = []
    start = 1
    while True:
        page = kind.all(qb=client, start_position=start, max_results=_PAGE)
        found.extend(page)
        if len(page) < _PAGE:
            return found
        start += _PAGE


def _bill(b: Any) -> Bill:
    return Bill(
        bill_id=str(b.Id),
        number=str(b.DocNumber or b.Id),
        vendor_id=str(b.VendorRef.value),
        vendor_name=str(b.VendorRef.name or ""),
        total=Decimal(str(b.TotalAmt)),
        balance=Decimal(str(b.Balance)),
        currency=str(b.CurrencyRef.value) if b.CurrencyRef else "USD",
        due_date=date.fromisoformat(str(b.DueDate)),
        memo=str(b.PrivateNote or ""),
    )
