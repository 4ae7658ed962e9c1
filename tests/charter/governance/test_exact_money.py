"""Exact amounts, currencies, identities and citations, judged by the pure gate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from charter.governance import gate
from charter.governance.amendments import amend
from charter.governance.constitution import content_hash
from schemas import AdCampaign, AmendmentRequest, Constitution, Invoice, Vendor
from tests.support.constitutions import constitution, observation, proposal

BUDGETS = """
action_types:
  schedule_payment: {reversible: true}
  adjust_campaign_budget: {reversible: true}
rules:
  - id: allow-small
    title: Pay up to $5,000
    applies_to: [schedule_payment]
    when: amount <= 5000.0
    effect: allow
  - id: allow-budget-tuning
    title: At most 25% either way
    applies_to: [adjust_campaign_budget]
    when: >-
      has(campaign.daily_budget) && amount <= campaign.daily_budget * 1.25
      && amount >= campaign.daily_budget * 0.75
    effect: allow
"""


@pytest.mark.parametrize(
    ("amount", "outcome", "cause"),
    [
        ("1440.0000000000001", "deny", "inexact_amount"),
        ("4999.999999", "deny", "inexact_amount"),
        ("5000.001", "deny", "inexact_amount"),
        ("4999.99", "execute", None),
        ("5000.00", "execute", None),
        ("5000.01", "escalate", "outside_bounds"),
    ],
)
def test_amounts_are_judged_exactly(amount: str, outcome: str, cause: str | None) -> None:
    c = constitution(BUDGETS)
    verdict = gate.evaluate(
        c, proposal(c, amount=Decimal(amount), reference=None), observation(invoices=[])
    )
    assert verdict.outcome == outcome, verdict.explanation
    if cause:
        assert cause in verdict.causes


def test_minor_units_follow_the_currency() -> None:
    c = constitution(BUDGETS)
    yen = proposal(c, amount=Decimal("12.5"), currency="JPY", reference=None)
    assert gate.evaluate(c, yen, observation(invoices=[])).causes == ["inexact_amount"]
    whole = proposal(c, amount=Decimal("1200"), currency="JPY", reference=None)
    # `amount <= 5000.0` is in dollars: 1200 yen escalates under it, and executes under a
    # law whose base currency is the yen.
    assert gate.evaluate(c, whole, observation(invoices=[])).outcome == "escalate"
    in_yen = constitution("defaults: {currency: JPY}\n" + BUDGETS)
    assert gate.evaluate(in_yen, whole, observation(invoices=[])).outcome == "execute"


def test_a_payment_in_another_currency_than_its_invoice_is_denied() -> None:
    c = constitution(BUDGETS)
    verdict = gate.evaluate(c, proposal(c, currency="EUR"), observation())
    assert (verdict.outcome, verdict.causes) == ("deny", ["currency_mismatch"])
    assert "INV-1" in verdict.explanation


def test_a_budget_in_another_currency_than_its_campaign_is_denied() -> None:
    c = constitution(BUDGETS)
    campaign = AdCampaign(
        campaign_id="cmp-1",
        name="Holiday",
        platform="meta",
        daily_budget=Decimal("400"),
        spend_7d=Decimal("10"),
        revenue_7d=Decimal("40"),
        status="active",
    )
    seen = observation(campaigns=[campaign])
    usd = proposal(c, action="adjust_campaign_budget", amount=Decimal("450"), reference="cmp-1")
    assert gate.evaluate(c, usd, seen).outcome == "execute"
    # The same numbers in yen: 450 JPY is not a 12.5% raise of a 400 USD budget.
    jpy = usd.model_copy(update={"currency": "JPY"})
    assert gate.evaluate(c, jpy, seen).causes == ["currency_mismatch"]


def test_citing_rules_that_cannot_apply_is_a_citation_mismatch() -> None:
    c = constitution(BUDGETS)
    every_rule = proposal(c, reference=None, citations=["allow-small", "allow-budget-tuning"])
    verdict = gate.evaluate(c, every_rule, observation(invoices=[]))
    assert verdict.outcome == "escalate" and verdict.causes == ["citation_mismatch"]
    assert verdict.citations is not None
    assert verdict.citations.inapplicable == ["allow-budget-tuning"]
    exact = proposal(c, reference=None, citations=["allow-small"])
    assert gate.evaluate(c, exact, observation(invoices=[])).outcome == "execute"


def _bluebird_twice() -> tuple[Vendor, Vendor, Invoice]:
    real = Vendor(vendor_id="v1", name="Bluebird", verified=False)
    twin = Vendor(vendor_id="v9", name="Bluebird", verified=False)
    twin_invoice = Invoice(
        invoice_id="INV-9",
        vendor_id="v9",
        vendor_name="Bluebird",
        amount=Decimal("2300.00"),
        due_date=date(2026, 12, 1),
        status="open",
    )
    return real, twin, twin_invoice


def test_an_amendment_binds_to_the_vendor_record_not_its_name() -> None:
    c = constitution(BUDGETS)
    approved = proposal(c, amount=Decimal("2300.00"))
    # As if it had escalated for being outside bounds (the amendable cause).
    judged = gate.evaluate(c, approved, observation())
    document = amend(
        c.document,
        proposal=approved,
        verdict=judged.model_copy(update={"outcome": "escalate", "causes": ["outside_bounds"]}),
        request=AmendmentRequest(),
        approver="maya",
        exception_id="ex-1",
        vendor_id="v1",
    )
    amended = Constitution(
        tenant_id="acme", version=2, content_hash=content_hash(document), document=document
    )
    real, twin, twin_invoice = _bluebird_twice()
    books = observation(vendors=[real, twin], invoices=[*observation().invoices, twin_invoice])
    rule = amended.document.rules[-1]
    assert 'vendor.vendor_id == "v1"' in rule.when and 'currency == "USD"' in rule.when
    # Above the $5,000 base rule so only the amendment could allow it.
    big = Decimal("6000.00")
    for_real = proposal(amended, amount=big, reference=None, citations=[rule.id])
    assert gate.evaluate(amended, for_real, books).outcome == "escalate"  # name is ambiguous now
    via_real_invoice = proposal(amended, amount=Decimal("2300.00"), citations=[rule.id])
    assert gate.evaluate(amended, via_real_invoice, books).outcome == "execute"
    via_twin = proposal(amended, amount=Decimal("2300.00"), reference="INV-9", citations=[rule.id])
    twin_verdict = gate.evaluate(amended, via_twin, books)
    assert rule.id not in [m.rule_id for m in twin_verdict.matched]


def test_a_name_two_vendor_records_share_identifies_neither() -> None:
    c = constitution(
        BUDGETS.replace("when: amount <= 5000.0", "when: has(vendor.verified) && amount <= 5000.0")
    )
    real, twin, _ = _bluebird_twice()
    verified = real.model_copy(update={"verified": True})
    alone = gate.evaluate(c, proposal(c, reference=None), observation(vendors=[verified]))
    assert alone.outcome == "execute"
    both = gate.evaluate(c, proposal(c, reference=None), observation(vendors=[verified, twin]))
    assert both.outcome == "escalate" and both.causes == ["outside_bounds"]
