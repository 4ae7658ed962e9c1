"""The facts a rule condition can see: the proposal, plus what was observed about it.

Facts come from the observation (the connector's snapshot), never from the reasoner's
words: a model can claim an invoice is unpaid, but `invoice.amount_paid` is what the bank
said. This module is pure and is imported by the workflow's gate.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas import Observation, ProposedAction

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
}


def _plain(value: Any) -> Any:
    """Convert model values into what CEL understands: floats, strings, bools, maps."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # dates and datetimes as ISO strings


def facts_for(proposal: ProposedAction, observation: Observation) -> dict[str, Any]:
    invoice = next((i for i in observation.invoices if i.invoice_id == proposal.reference), None)
    vendor = None
    if invoice is not None:
        vendor = next((v for v in observation.vendors if v.vendor_id == invoice.vendor_id), None)
    elif proposal.counterparty:
        vendor = next((v for v in observation.vendors if v.name == proposal.counterparty), None)
    campaign = next((c for c in observation.campaigns if c.campaign_id == proposal.reference), None)
    payroll = next(
        (p for p in observation.payroll_runs if p.payroll_run_id == proposal.reference), None
    )
    campaign_facts: dict[str, Any] = {}
    if campaign is not None:
        campaign_facts = _plain(campaign.model_dump(mode="python"))
        campaign_facts["roas"] = campaign.roas
    return {
        "action": proposal.action,
        "amount": float(proposal.amount) if proposal.amount is not None else 0.0,
        "currency": proposal.currency,
        "counterparty": proposal.counterparty or "",
        "reference": proposal.reference or "",
        "confidence": float(proposal.confidence),
        "invoice": _plain(invoice.model_dump(mode="python")) if invoice else {},
        "vendor": _plain(vendor.model_dump(mode="python")) if vendor else {},
        "campaign": campaign_facts,
        "payroll": _plain(payroll.model_dump(mode="python")) if payroll else {},
        "accounts": [_plain(a.model_dump(mode="python")) for a in observation.bank_accounts],
        "total_cash": float(sum((a.balance for a in observation.bank_accounts), Decimal(0))),
    }
