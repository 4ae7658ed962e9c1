"""The payables agent's observation, put together from the providers a tenant configured.

Where each fact comes from:
- bank accounts and balances: the bank provider (Plaid `/accounts/balance/get`, or the
  demo books);
- bills (invoices) and vendors: the bills provider (QuickBooks Online bills and vendors, or
  the demo books); amounts stay `Decimal` in the bill's own currency;
- `invoice.amount_paid`: the larger of what the bills provider shows paid (QuickBooks:
  total less open balance) and what the bank shows left the account for that bill (Plaid
  outflows in the bill's currency whose description names the bill number as a whole word
  — "INV-1" is not named by "INV-10" — for exactly the bill's total or open balance) —
  the two usually record the same payment, so they are not added;
- `vendor.verified`: with Modern Treasury paying, whether the vendor's name is a Modern
  Treasury counterparty with exactly one verified external account; otherwise what the
  demo books say. A vendor unknown to the payments provider is not verified.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from charter.connectors.plaid import BankTransaction, PlaidBank
from charter.connectors.quickbooks import Bill, QuickBooksBills
from schemas import Invoice, Observation, Proposal, Vendor


def names(description: str, number: str) -> bool:
    """Whether a bank line's description names bill `number` exactly: as a whole word, not
    inside a longer reference (INV-1 is not INV-10, nor XINV-1)."""
    pattern = rf"(?<![\w-]){re.escape(number)}(?![\w-])"
    return bool(number) and re.search(pattern, description, re.IGNORECASE) is not None


def bank_paid(
    transactions: list[BankTransaction], number: str, currency: str, amounts: set[Decimal]
) -> Decimal:
    """What left the bank for bill `number`, in its currency: outflows that name it exactly,
    each for exactly one of `amounts` (the bill's total or its open balance)."""
    return sum(
        (
            t.amount
            for t in transactions
            if t.amount > 0
            and t.currency == currency
            and t.amount in amounts
            and names(t.description, number)
        ),
        Decimal(0),
    )


def _invoice(bill: Bill, transactions: list[BankTransaction]) -> Invoice:
    banked = bank_paid(transactions, bill.number, bill.currency, {bill.total, bill.balance})
    paid = max(bill.total - bill.balance, banked)
    return Invoice(
        # QuickBooks' Id: a DocNumber is the vendor's, and two vendors' may be the same.
        invoice_id=bill.bill_id,
        number=bill.number,
        vendor_id=bill.vendor_id,
        vendor_name=bill.vendor_name,
        amount=bill.total,
        currency=bill.currency,
        due_date=bill.due_date,
        status="paid" if bill.balance <= 0 else "open",
        memo=bill.memo,
        amount_paid=paid,
    )


class PayablesReader:
    """Read only: every part it holds reads, and none of them has a method that writes.

    `demo`: what the demo books showed, read beforehand in a transaction of its own, so
    that the providers are asked with no transaction open."""

    def __init__(
        self,
        tenant_id: str,
        *,
        demo: Observation | None,
        bank: PlaidBank | None,
        bills: QuickBooksBills | None,
        verified_payees: Callable[[], Awaitable[set[str]]] | None,
    ) -> None:
        self._tenant_id = tenant_id
        self._demo = demo
        self._bank = bank
        self._bills = bills
        self._verified_payees = verified_payees
        parts = [p.name for p in (bank, bills) if p is not None]
        self.name = "+".join([*parts, *(["demo-books"] if demo else [])])

    async def facts_at_execution(self, agent: str, proposal: Proposal) -> Observation:
        """Everything afresh, not only the proposal's bill: the vendor's other bills are facts
        too (a look-alike duplicate)."""
        return await self.snapshot(agent, [])

    async def snapshot(self, agent: str, focus: list[str]) -> Observation:
        demo = self._demo
        accounts = demo.bank_accounts if demo else []
        transactions: list[BankTransaction] = []
        if self._bank is not None:
            accounts, transactions = await self._bank.read()
        if self._bills is not None:
            bills, records = await self._bills.read()
            vendors = [
                Vendor(vendor_id=v.vendor_id, name=v.name, verified=False)
                for v in records
                if v.active
            ]
            invoices = [_invoice(b, transactions) for b in bills if not focus or b.bill_id in focus]
        else:
            vendors = demo.vendors if demo else []
            invoices = [
                i.model_copy(
                    update={
                        "amount_paid": max(
                            i.amount_paid,
                            bank_paid(
                                transactions,
                                i.invoice_id,
                                i.currency,
                                {i.amount, i.amount - i.amount_paid},
                            ),
                        )
                    }
                )
                for i in (demo.invoices if demo else [])
            ]
        if self._verified_payees is not None:
            payees = await self._verified_payees()
            vendors = [v.model_copy(update={"verified": v.name in payees}) for v in vendors]
        return Observation(
            tenant_id=self._tenant_id,
            agent=agent,
            observed_at=datetime.now(UTC),
            source=self.name,
            bank_accounts=accounts,
            vendors=vendors,
            invoices=invoices,
        )
