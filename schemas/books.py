"""What an agent sees: a full, read-only snapshot of a tenant's books.

Everything in an observation came from outside Charter (a bank, an invoice inbox, an ad
platform). Free text such as invoice memos and vendor names is untrusted data: it is shown
to people and to the reasoner, but the gate only ever compares it, never executes it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from schemas.frozen import FrozenModel
from schemas.spend import ExchangeRate, SpendSnapshot


class BankAccount(FrozenModel):
    account_id: str
    name: str
    currency: str = "USD"
    balance: Decimal


class Vendor(FrozenModel):
    vendor_id: str
    name: str
    verified: bool = Field(description="Bank details confirmed out of band by a human.")
    monthly_spend_limit: Decimal | None = None


class Invoice(FrozenModel):
    invoice_id: str
    number: str = Field(
        default="",
        description="The bill's number as its vendor wrote it (QuickBooks DocNumber), for "
        "display only: two vendors' may be the same, so it is never a reference.",
    )
    vendor_id: str
    vendor_name: str
    amount: Decimal
    currency: str = "USD"
    due_date: date
    status: Literal["open", "scheduled", "paid", "void"]
    memo: str = ""
    amount_paid: Decimal = Field(
        default=Decimal("0"),
        description="Sum of bank payments referencing this invoice, as the bank reports them.",
    )


class PayrollRun(FrozenModel):
    payroll_run_id: str
    period: str
    employee_count: int
    total: Decimal
    pay_date: date
    status: Literal["draft", "submitted", "paid"]
    currency: str = "USD"


class AdCampaign(FrozenModel):
    campaign_id: str
    name: str
    platform: str
    daily_budget: Decimal
    spend_7d: Decimal
    revenue_7d: Decimal
    status: Literal["active", "paused"]
    currency: str = "USD"
    budget_7d_ago: Decimal | None = None
    """The daily budget before the changes Charter executed in the last seven days: a
    window bound on the budget keeps changes from compounding across runs."""

    @property
    def roas(self) -> float:
        """Return on ad spend over the last seven days (0 when nothing was spent)."""
        return float(self.revenue_7d / self.spend_7d) if self.spend_7d else 0.0


class Observation(FrozenModel):
    """A full snapshot of what one agent read, taken by the read activity."""

    tenant_id: str
    agent: str
    observed_at: datetime
    source: str = Field(description="Connector that produced the snapshot.")
    bank_accounts: list[BankAccount] = []
    vendors: list[Vendor] = []
    invoices: list[Invoice] = []
    payroll_runs: list[PayrollRun] = []
    campaigns: list[AdCampaign] = []
    spend: SpendSnapshot | None = None
    """Charter's own ledger at observation time (not from the connector); None in runs
    recorded before spend facts existed."""
    rates: list[ExchangeRate] = []
    """The tenant's exchange rates at observation time (Charter's own, set by an owner, not
    from the connector): what the limits convert spend in other currencies with."""

    #: The record lists and how a summary names them, in one place: the header-only copy and
    #: the summary both read it, so a new kind of record cannot be forgotten by one of them.
    RECORD_LISTS: ClassVar[dict[str, str]] = {
        "bank_accounts": "accounts",
        "vendors": "vendors",
        "invoices": "invoices",
        "payroll_runs": "payroll runs",
        "campaigns": "campaigns",
    }

    def without_records(self) -> Observation:
        """The snapshot's header only (who, when, from where), without the records or the
        ledger's sums (which grow with the payees of the last 30 days)."""
        return self.model_copy(update={**{name: [] for name in self.RECORD_LISTS}, "spend": None})

    def summary(self) -> str:
        """How many records of each kind were observed, e.g. `2 accounts, 5 vendors, ...`."""
        return ", ".join(
            f"{len(getattr(self, name))} {label}" for name, label in self.RECORD_LISTS.items()
        )
