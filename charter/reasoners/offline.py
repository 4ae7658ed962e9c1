"""A deterministic reasoner with no model behind it, for the demo and the tests.

It behaves like a diligent but naive junior: it proposes paying every open invoice (it does
not check the bank for earlier payments; the constitution does), scales budgets by return on
ad spend, and submits draft payroll. Its confidence drops on signals a human would notice.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from schemas import Constitution, Observation, ProposedAction

_SUSPICIOUS_MEMO = ("bank details", "new account", "urgent", "wire to", "ignore previous")


def _cite(constitution: Constitution, action: str) -> list[str]:
    # Cite every rule it evaluated, wildcard rules included: the gate checks citations.
    rules = constitution.document.rules
    return [r.id for r in rules if action in r.applies_to or "*" in r.applies_to]


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class OfflineReasoner:
    name = "offline"

    async def propose(
        self, observation: Observation, constitution: Constitution
    ) -> list[ProposedAction]:
        proposals: list[ProposedAction] = []
        vendors = {v.vendor_id: v for v in observation.vendors}
        for invoice in observation.invoices:
            if invoice.status != "open":
                continue
            vendor = vendors.get(invoice.vendor_id)
            confidence, why = 0.93, "Open invoice from a known vendor, due"
            if vendor is None or not vendor.verified:
                confidence, why = (
                    0.86,
                    "Open invoice from a vendor whose bank details are unverified, due",
                )
            if any(s in invoice.memo.lower() for s in _SUSPICIOUS_MEMO):
                confidence = 0.55
                why = "The memo asks for changed payment details, which is a common fraud pattern; due"
            proposals.append(
                ProposedAction(
                    action="schedule_payment",
                    amount=invoice.amount,
                    currency=invoice.currency,
                    counterparty=invoice.vendor_name,
                    reference=invoice.invoice_id,
                    confidence=confidence,
                    rationale=f"{why} {invoice.due_date.isoformat()}.",
                    citations=_cite(constitution, "schedule_payment"),
                )
            )
        for campaign in observation.campaigns:
            if campaign.status != "active":
                continue
            roas = campaign.roas
            if roas < 1.0:
                proposals.append(
                    ProposedAction(
                        action="pause_campaign",
                        amount=Decimal(0),
                        counterparty=campaign.platform,
                        reference=campaign.campaign_id,
                        confidence=0.88,
                        rationale=f"{campaign.name} returned ${roas:.2f} per $1 over 7 days.",
                        citations=_cite(constitution, "pause_campaign"),
                    )
                )
            elif roas >= 3.0:
                factor = Decimal("2.0") if roas >= 6.0 else Decimal("1.2")
                proposals.append(
                    ProposedAction(
                        action="adjust_campaign_budget",
                        amount=_money(campaign.daily_budget * factor),
                        counterparty=campaign.platform,
                        reference=campaign.campaign_id,
                        confidence=0.9,
                        rationale=(
                            f"{campaign.name} returned ${roas:.2f} per $1; raise the daily budget "
                            f"from ${campaign.daily_budget} to ${_money(campaign.daily_budget * factor)}."
                        ),
                        citations=_cite(constitution, "adjust_campaign_budget"),
                    )
                )
        for run in observation.payroll_runs:
            if run.status != "draft":
                continue
            proposals.append(
                ProposedAction(
                    action="run_payroll",
                    amount=run.total,
                    counterparty=f"{run.employee_count} employees",
                    reference=run.payroll_run_id,
                    confidence=0.97,
                    rationale=f"Payroll for {run.period} matches last period within 2%; pay date {run.pay_date}.",
                    citations=_cite(constitution, "run_payroll"),
                )
            )
        return proposals
