"""The facts a rule condition can see: the proposal, plus what was observed about it.

Facts come from the observation (the connector's snapshot), never from the reasoner's
words: a model can claim an invoice is unpaid, but `invoice.amount_paid` is what the bank
said. This module is pure and is imported by the workflow's gate.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from charter.governance import money
from charter.governance.spend import SPEND_DIMENSIONS, SPEND_WINDOWS, payee_of, spend_facts
from schemas import Invoice, Observation, ProposedAction

#: Variables available to CEL conditions, with a probe value of the right type for each.
FACT_VARIABLES: dict[str, Any] = {
    "action": "schedule_payment",
    "amount": 0.0,
    "currency": "USD",
    "counterparty": "",
    "reference": "",
    "confidence": 1.0,
    "invoice": {},
    "vendor": {},
    "campaign": {},
    "payroll": {},
    "accounts": [],
    "total_cash": 0.0,
    "run": {"same_reference": 0, "reference_amount": 0.0, "counterparty_amount": 0.0},
    # Called as `spend.counterparty("P30D")`: see `charter.governance.spend`.
    "spend": {d: dict.fromkeys(SPEND_WINDOWS, 0.0) for d in SPEND_DIMENSIONS},
}


def _plain(value: Any) -> Any:
    """Convert model values into what CEL understands: floats, strings, bools, maps."""
    if isinstance(value, Decimal):
        try:
            return money.to_cel(value)
        except ValueError:  # not money the books could hold (a ratio): the nearest double
            return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # dates and datetimes as ISO strings


def _invoice_for(proposal: ProposedAction, observation: Observation) -> Invoice | None:
    return next((i for i in observation.invoices if i.invoice_id == proposal.reference), None)


def _payee(proposal: ProposedAction, observation: Observation) -> str:
    return payee_of(proposal, _invoice_for(proposal, observation))


def _run_facts(
    proposal: ProposedAction, observation: Observation, earlier: Sequence[ProposedAction]
) -> dict[str, Any]:
    """What earlier proposals of the same run already commit (so that a payment split
    across proposals, or repeated, is caught). The observation is a snapshot taken before any of them executed."""
    same = [p for p in earlier if p.action == proposal.action]
    same_ref = [p for p in same if proposal.reference and p.reference == proposal.reference]
    payee = _payee(proposal, observation)
    same_payee = [p for p in same if _payee(p, observation) == payee]
    return {
        "same_reference": len(same_ref),
        "reference_amount": _plain(sum((p.amount or Decimal(0) for p in same_ref), Decimal(0))),
        "counterparty_amount": _plain(
            sum((p.amount or Decimal(0) for p in same_payee), Decimal(0))
        ),
    }


def facts_for(
    proposal: ProposedAction,
    observation: Observation,
    earlier: Sequence[ProposedAction] = (),
    *,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """`earlier`: the run's proposals gated before this one and not denied.

    `only`: the names wanted (default: every fact). The gate asks for what its live rules
    read; each fact is the same whichever others are computed beside it."""
    wanted = FACT_VARIABLES.keys() if only is None else only
    facts: dict[str, Any] = {}
    if "action" in wanted:
        facts["action"] = proposal.action
    if "amount" in wanted:
        facts["amount"] = _plain(proposal.amount) if proposal.amount is not None else 0.0
    if "currency" in wanted:
        facts["currency"] = proposal.currency
    if "counterparty" in wanted:
        facts["counterparty"] = proposal.counterparty or ""
    if "reference" in wanted:
        facts["reference"] = proposal.reference or ""
    if "confidence" in wanted:
        facts["confidence"] = float(proposal.confidence)
    invoice = None
    if "invoice" in wanted or "vendor" in wanted:
        invoice = _invoice_for(proposal, observation)
    if "invoice" in wanted:
        facts["invoice"] = _invoice_facts(invoice, observation)
    if "vendor" in wanted:
        facts["vendor"] = _vendor_facts(invoice, proposal, observation)
    if "campaign" in wanted:
        facts["campaign"] = _campaign_facts(proposal, observation)
    if "payroll" in wanted:
        payroll = next(
            (p for p in observation.payroll_runs if p.payroll_run_id == proposal.reference), None
        )
        facts["payroll"] = _plain(payroll.model_dump(mode="python")) if payroll else {}
    if "accounts" in wanted:
        facts["accounts"] = [_plain(a.model_dump(mode="python")) for a in observation.bank_accounts]
    if "total_cash" in wanted:
        # Cash in the proposal's currency only: no account's EUR counts as USD.
        facts["total_cash"] = _plain(
            sum(
                (a.balance for a in observation.bank_accounts if a.currency == proposal.currency),
                Decimal(0),
            )
        )
    if "run" in wanted:
        facts["run"] = _run_facts(proposal, observation, earlier)
    if "spend" in wanted:
        facts["spend"] = {
            dimension: {w: _plain(v) for w, v in windows.items()}
            for dimension, windows in spend_facts(
                observation.spend, proposal, observation.agent, _payee(proposal, observation)
            ).items()
        }
    return facts


def _invoice_facts(invoice: Invoice | None, observation: Observation) -> dict[str, Any]:
    invoice_facts: dict[str, Any] = {}
    if invoice is not None:
        invoice_facts = _plain(invoice.model_dump(mode="python"))
        # Exact here, in Decimal, so that no condition has to subtract doubles.
        invoice_facts["outstanding"] = _plain(invoice.amount - invoice.amount_paid)
        # Other live invoices of the same vendor for the same amount: possible duplicates.
        invoice_facts["duplicates"] = [
            i.invoice_id
            for i in observation.invoices
            if i.invoice_id != invoice.invoice_id
            and i.vendor_id == invoice.vendor_id
            and i.amount == invoice.amount
            and i.status != "void"
        ]
    return invoice_facts


def _vendor_facts(
    invoice: Invoice | None, proposal: ProposedAction, observation: Observation
) -> dict[str, Any]:
    vendor = None
    if invoice is not None:
        vendor = next((v for v in observation.vendors if v.vendor_id == invoice.vendor_id), None)
    elif proposal.counterparty:
        # A name identifies a vendor only when exactly one record bears it: a second record
        # with the same name (another id, another bank account) makes it nobody's.
        named = [v for v in observation.vendors if v.name == proposal.counterparty]
        vendor = named[0] if len(named) == 1 else None
    return _plain(vendor.model_dump(mode="python")) if vendor else {}


def _campaign_facts(proposal: ProposedAction, observation: Observation) -> dict[str, Any]:
    campaign = next((c for c in observation.campaigns if c.campaign_id == proposal.reference), None)
    campaign_facts: dict[str, Any] = {}
    if campaign is not None:
        campaign_facts = _plain(campaign.model_dump(mode="python"))
        campaign_facts["roas"] = campaign.roas
    return campaign_facts
