"""Closing the books: a QuickBooks BillPayment against a bill the payment provider paid.

Money does not move here: the payment provider moved it. This records in the books that the
bill was paid, so the next read shows its Balance reduced (0 when paid in full) and no run
proposes paying it again. Exactly once by Intuit's own idempotency: the `requestid` query
parameter, derived from the payment's idempotency key (one key per payment of a bill, the
same for every run and attempt paying it), so a re-sent create returns the BillPayment the
first one made instead of a second one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from quickbooks.objects.base import LinkedTxn, Ref
from quickbooks.objects.bill import Bill as QBBill
from quickbooks.objects.billpayment import BillPayment, BillPaymentLine, CheckPayment

from charter.connectors.base import ConnectorError
from charter.connectors.quickbooks.client import (
    PROVIDER,
    QuickBooksSettings,
    qbo_client,
    translated,
)
from charter.storage.credential_vault import Credential

#: Fixed forever: the request id of a payment must not change between releases.
_REQUEST_IDS = uuid.UUID("6f1d3c1e-2b8a-4f3e-9c51-0c7a1f0e8d42")


def request_id(payment_key: str) -> str:
    """Intuit's `requestid` for the BillPayment of the payment under `payment_key` (at most
    50 characters, unique per request: a UUID derived from the key)."""
    return str(uuid.uuid5(_REQUEST_IDS, payment_key))


@dataclass(frozen=True)
class RecordedPayment:
    bill_payment_id: str
    bill_id: str
    balance: Decimal
    """The bill's open balance after the payment, as QuickBooks answered."""


class QuickBooksBillPayments:
    """The books' write half: only BillPayment create, linked to one bill."""

    name = PROVIDER

    def __init__(self, settings: QuickBooksSettings, tokens: Credential, app: Credential) -> None:
        self._settings = settings
        self._tokens = tokens
        self._app = app

    async def record(
        self, *, bill_id: str, amount: Decimal, currency: str, payment_key: str, note: str
    ) -> RecordedPayment:
        if self._settings.payment_account_id is None:
            raise ConnectorError(
                "QuickBooks settings name no payment_account_id: no BillPayment can be recorded"
            )
        with translated(self._tokens):
            return await asyncio.to_thread(
                self._record, bill_id, amount, currency, request_id(payment_key), note
            )

    def _record(
        self, bill_id: str, amount: Decimal, currency: str, requestid: str, note: str
    ) -> RecordedPayment:
        client = qbo_client(self._settings, self._tokens, self._app)
        bill: Any = QBBill.get(bill_id, qb=client)
        billed_in = str(bill.CurrencyRef.value) if bill.CurrencyRef else "USD"
        if billed_in != currency:
            raise ConnectorError(
                f"QuickBooks bill {bill_id} is in {billed_in}, the payment in {currency}"
            )
        payment = BillPayment()
        payment.PayType = "Check"
        payment.TotalAmt = amount
        payment.PrivateNote = note
        payment.VendorRef = Ref()
        payment.VendorRef.value = str(bill.VendorRef.value)
        payment.CheckPayment = CheckPayment()
        payment.CheckPayment.BankAccountRef = Ref()
        payment.CheckPayment.BankAccountRef.value = self._settings.payment_account_id
        line = BillPaymentLine()
        line.Amount = amount
        linked = LinkedTxn()
        linked.TxnId = bill_id
        linked.TxnType = "Bill"
        line.LinkedTxn = [linked]
        payment.Line = [line]
        saved: Any = payment.save(qb=client, request_id=requestid)
        after: Any = QBBill.get(bill_id, qb=client)
        return RecordedPayment(
            bill_payment_id=str(saved.Id), bill_id=bill_id, balance=Decimal(str(after.Balance))
        )
