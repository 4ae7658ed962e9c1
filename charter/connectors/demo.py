"""The demo company's books, kept in PostgreSQL beside Charter's own tables.

Stands in for a bank, an invoice inbox, a payroll provider and an ad platform. Both halves
work inside the caller's tenant transaction, so row-level security applies to them too.
Like the real services they stand for, they refuse to work without a credential of the
right scope: the reader a read credential per connector it touches (`demo-bank`, and
`demo-ads` for campaigns), the writer a write credential for the action's connector.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg

from charter.connectors.base import (
    ActionRefusedByBooks,
    ConnectorError,
    KeyLifetime,
    UnsupportedAction,
)
from charter.connectors.demo_auth import (
    ADS,
    BANK,
    WRITE_CONNECTOR,
    ConnectorAuthError,
    authenticate,
)
from charter.storage.credential_vault import Credential
from schemas import (
    AdCampaign,
    BankAccount,
    Invoice,
    Observation,
    PayrollRun,
    Proposal,
    Vendor,
)

R = TypeVar("R", BankAccount, Vendor, Invoice, PayrollRun, AdCampaign)

#: What each agent may read. An agent never sees books outside its remit.
AGENT_SCOPES: dict[str, frozenset[str]] = {
    "payables": frozenset({"bank_accounts", "vendors", "invoices"}),
    "marketing": frozenset({"bank_accounts", "campaigns"}),
    "payroll": frozenset({"bank_accounts", "payroll_runs"}),
}


#: The columns of each kind of record, for the tenant in $1; callers add their filter.
_ACCOUNTS = (
    "SELECT account_id, name, currency, balance FROM charter.bank_accounts WHERE tenant_id = $1 "
)
_VENDORS = (
    "SELECT vendor_id, name, verified, monthly_spend_limit FROM charter.vendors "
    "WHERE tenant_id = $1 "
)
_INVOICES = (
    "SELECT i.invoice_id, i.vendor_id, v.name AS vendor_name, i.amount, i.currency, "
    "i.due_date, i.status, i.memo, COALESCE((SELECT sum(p.amount) FROM charter.payments p "
    "WHERE p.tenant_id = i.tenant_id AND p.invoice_id = i.invoice_id), 0) AS amount_paid "
    "FROM charter.invoices i JOIN charter.vendors v USING (tenant_id, vendor_id) "
    "WHERE i.tenant_id = $1 "
)
_PAYROLL = (
    "SELECT payroll_run_id, period, employee_count, total, pay_date, status "
    "FROM charter.payroll_runs WHERE tenant_id = $1 "
)
#: `budget_7d_ago`: the budget the first change Charter executed in the last seven days
#: replaced, from its own record of them (the budget now if there was none).
_CAMPAIGNS = (
    "SELECT campaign_id, name, platform, daily_budget, spend_7d, revenue_7d, status, "
    "coalesce((SELECT b.budget_before FROM charter.budget_changes b WHERE b.tenant_id = "
    "ad_campaigns.tenant_id AND b.campaign_id = ad_campaigns.campaign_id AND b.executed_at > "
    "now() - interval '7 days' ORDER BY b.executed_at, b.idempotency_key LIMIT 1), "
    "daily_budget) AS budget_7d_ago "
    "FROM charter.ad_campaigns WHERE tenant_id = $1 "
)


async def _records(conn: asyncpg.Connection, model: type[R], sql: str, *args: object) -> list[R]:
    return [model(**dict(r)) for r in await conn.fetch(sql, *args)]


def _scope(agent: str) -> frozenset[str]:
    scope = AGENT_SCOPES.get(agent)
    if scope is None:
        raise ConnectorError(f"unknown agent {agent!r}; known: {sorted(AGENT_SCOPES)}")
    return scope


class DemoBooksReader:
    """Read-only view of the demo books. Deliberately has no write methods."""

    name = "demo-books"

    def __init__(
        self, conn: asyncpg.Connection, tenant_id: str, credentials: dict[str, Credential]
    ) -> None:
        self._conn = conn
        self._tenant_id = tenant_id
        self._credentials = credentials

    def _authenticate(self, connector: str) -> None:
        credential = self._credentials.get(connector)
        if credential is None:
            raise ConnectorAuthError(f"{connector}: no read credential supplied")
        authenticate(credential, connector, "read")

    async def snapshot(self, agent: str, focus: list[str]) -> Observation:
        scope = _scope(agent)
        self._authenticate(BANK)
        if "campaigns" in scope:
            self._authenticate(ADS)
        c, t = self._conn, self._tenant_id
        focused = "AND (cardinality($2::text[]) = 0 OR {} = ANY($2)) "
        found: dict[str, Any] = {}
        if "bank_accounts" in scope:
            found["bank_accounts"] = await _records(
                c, BankAccount, _ACCOUNTS + "ORDER BY account_id", t
            )
        if "vendors" in scope:
            found["vendors"] = await _records(c, Vendor, _VENDORS + "ORDER BY vendor_id", t)
        if "invoices" in scope:
            found["invoices"] = await _records(
                c,
                Invoice,
                _INVOICES + focused.format("i.invoice_id") + "ORDER BY i.invoice_id",
                t,
                focus,
            )
        if "payroll_runs" in scope:
            found["payroll_runs"] = await _records(
                c,
                PayrollRun,
                _PAYROLL + focused.format("payroll_run_id") + "ORDER BY payroll_run_id",
                t,
                focus,
            )
        if "campaigns" in scope:
            found["campaigns"] = await _records(
                c,
                AdCampaign,
                _CAMPAIGNS + focused.format("campaign_id") + "ORDER BY campaign_id",
                t,
                focus,
            )
        return Observation(
            tenant_id=t, agent=agent, observed_at=datetime.now(UTC), source=self.name, **found
        )

    async def facts_at_execution(self, agent: str, proposal: Proposal) -> Observation:
        """The records a proposal's rules look at, re-read now under row locks held until the
        caller's transaction ends: the invoice and its vendor (or the vendors of its name), the
        vendor's other invoices, the campaign, the payroll run, the bank accounts. What an act
        re-judges the proposal on; the act holds its authorisation, so no read credential is
        asked for."""
        scope = _scope(agent)
        c, t, ref = self._conn, self._tenant_id, proposal.reference or ""
        found: dict[str, Any] = {}
        if "bank_accounts" in scope:
            found["bank_accounts"] = await _records(
                c, BankAccount, _ACCOUNTS + "ORDER BY account_id FOR UPDATE", t
            )
        if "invoices" in scope:
            locked = await c.fetchrow(
                "SELECT vendor_id FROM charter.invoices WHERE tenant_id = $1 AND invoice_id = $2 "
                "FOR UPDATE",
                t,
                ref,
            )
            vendor_ids = [locked["vendor_id"]] if locked else []
            found["vendors"] = await _records(
                c,
                Vendor,
                _VENDORS + "AND (vendor_id = ANY($2) OR name = $3) ORDER BY vendor_id FOR UPDATE",
                t,
                vendor_ids,
                proposal.counterparty or "",
            )
            # The vendor's other invoices too: a look-alike duplicate is a decisive fact.
            found["invoices"] = await _records(
                c,
                Invoice,
                _INVOICES + "AND i.vendor_id = ANY($2) ORDER BY i.invoice_id",
                t,
                vendor_ids,
            )
        if "payroll_runs" in scope:
            found["payroll_runs"] = await _records(
                c, PayrollRun, _PAYROLL + "AND payroll_run_id = $2 FOR UPDATE", t, ref
            )
        if "campaigns" in scope:
            found["campaigns"] = await _records(
                c, AdCampaign, _CAMPAIGNS + "AND campaign_id = $2 FOR UPDATE", t, ref
            )
        return Observation(
            tenant_id=t, agent=agent, observed_at=datetime.now(UTC), source=self.name, **found
        )


class DemoBooksWriter:
    """Write side of the demo books. Each method changes exactly one thing."""

    name = "demo-books"
    #: A payment and its record commit in one transaction: no outcome is ever unknown.
    key_lifetime: KeyLifetime | None = None

    def __init__(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        credential: Credential,
        judged: Observation | None = None,
    ) -> None:
        """`judged`: the records the action was last judged on; a change relative to a
        record (a budget) is refused if the record no longer holds what was judged."""
        self._conn = conn
        self._tenant_id = tenant_id
        self._credential = credential
        self._judged = judged

    async def find(self, idempotency_key: str) -> str | None:
        # The demo books write in the same transaction as the action's result: a write whose
        # result was not recorded was rolled back with it, so there is never one to find.
        return None

    async def execute(self, proposal: Proposal, idempotency_key: str) -> str:
        connector = WRITE_CONNECTOR.get(proposal.action)
        if connector is None:
            raise UnsupportedAction(f"demo-books cannot perform {proposal.action!r}")
        authenticate(self._credential, connector, "write")
        handler = {
            "schedule_payment": self._schedule_payment,
            "adjust_campaign_budget": self._adjust_budget,
            "pause_campaign": self._pause_campaign,
            "run_payroll": self._run_payroll,
        }.get(proposal.action)
        if handler is None:
            raise UnsupportedAction(f"demo-books cannot perform {proposal.action!r}")
        return await handler(proposal, idempotency_key)

    async def _schedule_payment(self, p: Proposal, key: str) -> str:
        # The row lock serialises payments of one invoice; what is still owed is re-checked
        # under it, because the gate judged an observation that may be days old and another
        # run may have paid the invoice since.
        invoice = await self._conn.fetchrow(
            "SELECT due_date, amount, status FROM charter.invoices WHERE tenant_id = $1 AND "
            "invoice_id = $2 FOR UPDATE",
            self._tenant_id,
            p.reference,
        )
        if invoice is None or p.amount is None:
            raise ActionRefusedByBooks(f"no invoice {p.reference!r} to pay")
        paid = await self._conn.fetchval(
            "SELECT COALESCE(sum(amount), 0) FROM charter.payments WHERE tenant_id = $1 AND "
            "invoice_id = $2",
            self._tenant_id,
            p.reference,
        )
        outstanding = invoice["amount"] - paid
        if invoice["status"] in ("paid", "void") or p.amount > outstanding:
            raise ActionRefusedByBooks(
                f"invoice {p.reference!r} ({invoice['status']}) has {outstanding} outstanding; "
                f"a payment of {p.amount} would overpay it"
            )
        payment_id = f"pay-{key[:12]}"
        await self._conn.execute(
            "INSERT INTO charter.payments (tenant_id, payment_id, account_id, invoice_id, "
            "counterparty, amount, status, value_date) VALUES ($1, $2, 'operating', $3, $4, $5, "
            "'scheduled', $6)",
            self._tenant_id,
            payment_id,
            p.reference,
            p.counterparty or "",
            p.amount,
            invoice["due_date"],
        )
        await self._conn.execute(
            "UPDATE charter.invoices SET status = 'scheduled' WHERE tenant_id = $1 AND "
            "invoice_id = $2",
            self._tenant_id,
            p.reference,
        )
        return payment_id

    async def _adjust_budget(self, p: Proposal, key: str) -> str:
        if p.amount is None:
            # Refused before anything is written: no retry can supply the missing amount.
            raise ActionRefusedByBooks(
                "adjust_campaign_budget needs the new daily budget as amount"
            )
        # A new budget was judged relative to the budget in force then: set it only if that is
        # still the budget (a cut by another run in between would compound with this change).
        judged = next(
            (
                c
                for c in (self._judged.campaigns if self._judged else [])
                if c.campaign_id == p.reference
            ),
            None,
        )
        if judged is None:
            raise ActionRefusedByBooks(
                f"campaign {p.reference!r} was not judged before this change"
            )
        done = await self._conn.execute(
            "UPDATE charter.ad_campaigns SET daily_budget = $3 WHERE tenant_id = $1 AND "
            "campaign_id = $2 AND daily_budget = $4",
            self._tenant_id,
            p.reference,
            Decimal(p.amount),
            judged.daily_budget,
        )
        if done != "UPDATE 1":
            raise ActionRefusedByBooks(
                f"campaign {p.reference!r} no longer has the daily budget {judged.daily_budget} "
                "the change was judged against"
            )
        # What the change replaced, so that changes across runs are bounded together.
        await self._conn.execute(
            "INSERT INTO charter.budget_changes (tenant_id, idempotency_key, campaign_id, "
            "budget_before, budget_after) VALUES ($1, $2, $3, $4, $5)",
            self._tenant_id,
            key,
            p.reference,
            judged.daily_budget,
            Decimal(p.amount),
        )
        return f"budget-{key[:12]}"

    async def _pause_campaign(self, p: Proposal, key: str) -> str:
        done = await self._conn.execute(
            "UPDATE charter.ad_campaigns SET status = 'paused' WHERE tenant_id = $1 AND "
            "campaign_id = $2",
            self._tenant_id,
            p.reference,
        )
        if done != "UPDATE 1":
            raise ActionRefusedByBooks(f"no campaign {p.reference!r}")
        return f"pause-{key[:12]}"

    async def _run_payroll(self, p: Proposal, key: str) -> str:
        # A payroll run is submitted whole: the approved amount must be its total, or what
        # moves is not what the human approved (an edited or understated amount).
        done = await self._conn.execute(
            "UPDATE charter.payroll_runs SET status = 'submitted' WHERE tenant_id = $1 AND "
            "payroll_run_id = $2 AND status = 'draft' AND total = $3",
            self._tenant_id,
            p.reference,
            p.amount,
        )
        if done != "UPDATE 1":
            total = await self._conn.fetchval(
                "SELECT total FROM charter.payroll_runs WHERE tenant_id = $1 AND "
                "payroll_run_id = $2 AND status = 'draft'",
                self._tenant_id,
                p.reference,
            )
            if total is not None:
                raise ActionRefusedByBooks(
                    f"payroll run {p.reference!r} totals {total}, not the approved {p.amount}"
                )
            raise ActionRefusedByBooks(f"no draft payroll run {p.reference!r}")
        return f"payroll-{key[:12]}"
