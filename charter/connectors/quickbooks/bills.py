"""Reading bills and vendors from QuickBooks Online. No method here writes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from quickbooks import QuickBooks
from quickbooks.objects.bill import Bill as QBBill
from quickbooks.objects.vendor import Vendor as QBVendor

from charter.connectors.quickbooks.client import QuickBooksSettings, qbo_client, translated
from charter.storage.credential_vault import Credential

_PAGE = 100


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
        with translated(self._tokens):
            return await asyncio.to_thread(self._read)

    def _read(self) -> tuple[list[Bill], list[VendorRecord]]:
        client = qbo_client(self._settings, self._tokens, self._app)
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


def _due(b: Any) -> date:
    """The bill's DueDate; without one (Intuit computes it from the vendor's terms, and a
    bill entered without terms may carry none), its transaction date: due on receipt, as
    QuickBooks itself treats a bill without terms. Neither: today (due now)."""
    for value in (getattr(b, "DueDate", None), getattr(b, "TxnDate", None)):
        if value:
            return date.fromisoformat(str(value))
    return date.today()


def _bill(b: Any) -> Bill:
    return Bill(
        bill_id=str(b.Id),
        number=str(b.DocNumber or b.Id),
        vendor_id=str(b.VendorRef.value),
        vendor_name=str(b.VendorRef.name or ""),
        total=Decimal(str(b.TotalAmt)),
        balance=Decimal(str(b.Balance)),
        currency=str(b.CurrencyRef.value) if b.CurrencyRef else "USD",
        due_date=_due(b),
        memo=str(b.PrivateNote or ""),
    )
