"""Money in the law: a bare number compared with money is in the base currency, and a
proposal in another currency is never judged by it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from charter.governance import bare_amounts, gate
from charter.governance.constitution import ConstitutionError, load_yaml
from tests.support.constitutions import constitution, observation, proposal

LAW = """
action_types:
  schedule_payment: {reversible: true, spends: true}
limits:
  - id: daily
    title: At most $20,000 a day
    scope: total
    approvals_may_exceed: true
    window: P1D
    amount: 20000
rules:
  - id: allow-small
    title: Pay up to $1,000
    applies_to: [schedule_payment]
    when: amount <= 1000.0
    effect: allow
  - id: deny-huge
    title: Never pay more than $50,000
    applies_to: [schedule_payment]
    when: amount > 50000.0
    effect: deny
"""


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("999.000", "KWD"), ("999.500", "BHD"), ("999.99", "EUR"), ("999", "JPY")],
)
def test_a_bare_number_never_lets_another_currency_through(amount: str, currency: str) -> None:
    c = constitution(LAW)
    foreign = proposal(c, amount=Decimal(amount), currency=currency, reference=None)
    verdict = gate.evaluate(c, foreign, observation(invoices=[]), with_limits=False)
    assert verdict.outcome == "escalate", verdict.explanation
    assert verdict.matched == []
    errors = {e.rule_id: e.error for e in verdict.errors}
    assert set(errors) == {"allow-small", "deny-huge"}
    assert f"in USD, the base currency; the proposal is in {currency}" in errors["allow-small"]
    assert "amount<=1000.0" in errors["allow-small"]


def test_the_same_number_in_the_base_currency_executes() -> None:
    c = constitution(LAW)
    usd = proposal(c, amount=Decimal("999.99"), currency="USD", reference=None)
    assert gate.evaluate(c, usd, observation(invoices=[])).outcome == "execute"


def test_a_deny_in_dollars_sends_a_huge_foreign_amount_to_a_human_not_through() -> None:
    c = constitution(LAW)
    huge = proposal(c, amount=Decimal("60000"), currency="EUR", reference=None)
    verdict = gate.evaluate(c, huge, observation(invoices=[]))
    assert verdict.outcome == "escalate" and "rule_error" in verdict.causes


def test_the_base_currency_is_the_laws_own() -> None:
    c = constitution(
        LAW.replace("amount: 20000", "amount: 20000\n    currency: EUR").replace(
            "action_types:", "defaults: {currency: EUR}\naction_types:"
        )
    )
    eur = proposal(c, amount=Decimal("999.99"), currency="EUR", reference=None)
    assert gate.evaluate(c, eur, observation(invoices=[])).outcome == "execute"
    usd = eur.model_copy(update={"currency": "USD"})
    assert gate.evaluate(c, usd, observation(invoices=[])).outcome == "escalate"


def test_the_rules_and_the_limit_agree_on_a_foreign_amount() -> None:
    """Neither the rule nor the daily limit can count KWD: both send it to a human."""
    c = constitution(LAW)
    kwd = proposal(c, amount=Decimal("999.000"), currency="KWD", reference=None)
    verdict = gate.evaluate(c, kwd, observation(invoices=[]))
    assert verdict.outcome == "escalate"
    assert [b.limit_id for b in verdict.limits] == ["daily"]
    assert {e.rule_id for e in verdict.errors} == {"allow-small", "deny-huge"}


def test_runs_recorded_before_the_currency_law_are_judged_as_then() -> None:
    c = constitution(LAW)
    kwd = proposal(c, amount=Decimal("999.000"), currency="KWD", reference=None)
    old = gate.evaluate(c, kwd, observation(invoices=[]), with_limits=False, currency_law=False)
    assert old.outcome == "execute"  # what the replayed history holds


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("has(vendor.verified) && vendor.verified && amount <= 5000.0", ["amount<=5000.0"]),
        ("amount + run.counterparty_amount > 5000.0", ["amount+run.counterparty_amount>5000.0"]),
        ('spend.total("P1D") + amount > 7000', ['spend.total("P1D")+amount>7000']),
        ("1000.0 >= (amount)", ["1000.0>=(amount)"]),
        ("amount <= campaign.daily_budget * 1.25", []),
        ("amount > invoice.outstanding", []),
        ("campaign.roas < 1.0", []),
        ('"amount < 5" == counterparty', []),
    ],
)
def test_comparisons_of_money_with_bare_numbers_are_found(source: str, found: list[str]) -> None:
    assert bare_amounts.comparisons(source) == found


def test_apply_names_each_currency_problem() -> None:
    text = LAW.replace("amount: 20000", "amount: 20000\n    currency: EUR").replace(
        "when: amount <= 1000.0", 'when: currency == "EUR" && amount <= 1000.0'
    )
    with pytest.raises(ConstitutionError) as exc:
        load_yaml(text)
    assert exc.value.problems == [
        "rule 'allow-small': compares money with a bare number (amount<=1000.0), which is in "
        "USD, the base currency, but requires currency EUR: write the rule in USD or set "
        "defaults.currency",
        "limit 'daily': is in EUR, the base currency is USD: a limit counts only amounts in "
        "the base currency (set defaults.currency)",
    ]
