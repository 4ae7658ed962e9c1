"""Limits count every currency: converted with the rates the observation recorded, rounded
up, and a currency no usable rate converts leaves the proposal not fitting."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

import pytest

from charter.governance import gate, spend
from charter.governance.exchange import RATE_MAX_AGE, Rates
from schemas import ExchangeRate, Invoice, SpendSnapshot, SpendTotals, Vendor
from tests.support.constitutions import OBSERVED_AT, constitution, observation, proposal

LAW = """
defaults: {currency: %s}
action_types:
  schedule_payment: {reversible: true, spends: true}
rules:
  - id: allow-small
    title: Pay up to 1,000 in the base currency
    applies_to: [schedule_payment]
    when: %s
    effect: allow
limits:
  - id: autonomous-daily
    title: At most $2,000 a day without a human
    scope: autonomous
    window: P1D
    amount: 2000
    currency: USD
"""


def rate(
    currency: str, value: str, *, base: str = "USD", age: timedelta = timedelta(0)
) -> ExchangeRate:
    return ExchangeRate(
        currency=currency,
        base=base,
        rate=Decimal(value),
        source="treasury",
        as_of=OBSERVED_AT - age,
    )


def rates(*quoted: ExchangeRate) -> Rates:
    return Rates(list(quoted), OBSERVED_AT)


def spent(amount: str) -> dict[str, SpendTotals]:
    totals = SpendTotals(total=Decimal(amount), autonomous=Decimal(amount))
    return {"P1D": totals, "P7D": totals, "P30D": totals}


def breaches(
    paid: str,
    currency: str,
    *,
    snapshot: SpendSnapshot | None = None,
    quoted: Rates | None = None,
    earlier: list | None = None,
) -> list:
    law = constitution(LAW % ("USD", "amount <= 1000.0"))
    return spend.breaches(
        law.document,
        proposal(law, amount=Decimal(paid), currency=currency),
        agent="payables",
        payee="vendor:v1",
        snapshot=snapshot or SpendSnapshot(as_of=OBSERVED_AT),
        autonomous=True,
        earlier=earlier or [],
        rates=quoted if quoted is not None else rates(),
    )


def test_a_conversion_is_direct_inverse_or_through_a_common_base_and_rounds_up() -> None:
    quoted = rates(rate("EUR", "1.085"), rate("KWD", "3.25"), rate("USD", "0.79", base="GBP"))
    assert quoted.convert(Decimal("100.01"), "EUR", "USD").amount == Decimal("108.52")  # 108.51085
    assert quoted.convert(Decimal("100"), "USD", "EUR").amount == Decimal("92.17")  # 92.1658...
    assert quoted.convert(Decimal("999"), "KWD", "EUR").amount == Decimal(
        "2992.40"
    )  # 3,246.75 USD / 1.085
    assert quoted.convert(Decimal("10"), "GBP", "USD").amount == Decimal("12.66")  # 12.658...
    assert quoted.convert(Decimal("5"), "USD", "USD").rates == ()
    assert quoted.convert(Decimal("5"), "JPY", "USD") is None


def test_a_rate_quoted_too_long_before_the_observation_converts_nothing() -> None:
    assert rates(rate("EUR", "1.1", age=RATE_MAX_AGE)).convert(Decimal(1), "EUR", "USD")
    assert (
        rates(rate("EUR", "1.1", age=RATE_MAX_AGE + timedelta(seconds=1))).convert(
            Decimal(1), "EUR", "USD"
        )
        is None
    )


@pytest.mark.parametrize(
    ("paid", "currency", "value", "fits"),
    [
        ("999.000", "KWD", "3.25", False),  # 3,246.75 USD: past the $2,000 limit
        ("999.50", "BHD", "2.65", False),  # 2,648.68 USD
        ("999.99", "EUR", "1.085", True),  # 1,084.99 USD
        ("1900.00", "USD", "1", True),
    ],
)
def test_a_proposal_in_another_currency_counts_at_its_recorded_rate(
    paid: str, currency: str, value: str, fits: bool
) -> None:
    quoted = rates(rate(currency, value)) if currency != "USD" else rates()
    found = breaches(paid, currency, quoted=quoted)
    assert (found == []) is fits
    if currency != "USD" and not fits:
        [breach] = found
        exact = Decimal(paid) * Decimal(value)
        assert breach.converted == exact.quantize(Decimal("0.01"), rounding=ROUND_CEILING)
        assert breach.limit_currency == "USD"
        assert f"(= {breach.converted} USD)" in spend.describe(breach)
        assert f"{currency}->USD {value} (treasury" in spend.describe(breach)


def test_spend_in_other_currencies_counts_against_the_limit() -> None:
    ledger = SpendSnapshot(
        as_of=OBSERVED_AT, windows=spent("500"), other_currencies={"EUR": spent("1000")}
    )
    # 500 USD + 1,000 EUR at 1.085 (1,085) + 300 USD = 1,885: fits; 500 does not.
    assert breaches("300.00", "USD", snapshot=ledger, quoted=rates(rate("EUR", "1.085"))) == []
    [breach] = breaches("500.00", "USD", snapshot=ledger, quoted=rates(rate("EUR", "1.085")))
    assert breach.spent == Decimal("1585.00") and breach.rates


def test_money_no_rate_converts_is_not_counted_so_nothing_fits() -> None:
    [own] = breaches("10.00", "EUR")
    assert own.unpriced == ["EUR"]
    assert "no usable rate from EUR to USD" in spend.describe(own)
    ledger = SpendSnapshot(as_of=OBSERVED_AT, other_currencies={"JPY": spent("5000")})
    [theirs] = breaches("10.00", "USD", snapshot=ledger)
    assert theirs.unpriced == ["JPY"]
    # Nothing spent in a currency needs no rate for it.
    assert (
        breaches(
            "10.00",
            "USD",
            snapshot=SpendSnapshot(as_of=OBSERVED_AT, other_currencies={"JPY": spent("0")}),
        )
        == []
    )


def test_earlier_proposals_of_the_run_count_converted() -> None:
    law = constitution(LAW % ("USD", "amount <= 1000.0"))
    first = proposal(law, proposal_id="p0", amount=Decimal("2000.00"), currency="EUR")
    assert breaches(
        "800.00", "USD", quoted=rates(rate("EUR", "1.085")), earlier=[(first, "vendor:v2")]
    )
    assert breaches("800.00", "USD", earlier=[(first, "vendor:v2")])[0].unpriced == ["EUR"]


def test_without_rates_limits_judge_as_before_they_converted() -> None:
    """Replayed runs: only the limit's currency counts, and a proposal in another does not fit."""
    law = constitution(LAW % ("USD", "amount <= 1000.0"))
    first = proposal(law, proposal_id="p0", amount=Decimal("2900.00"), currency="EUR")
    legacy = dict(
        agent="payables",
        payee="vendor:v1",
        snapshot=SpendSnapshot(as_of=OBSERVED_AT),
        autonomous=True,
        rates=None,
    )
    assert (
        spend.breaches(
            law.document,
            proposal(law, amount=Decimal("500.00")),
            earlier=[(first, "vendor:v1")],
            **legacy,
        )
        == []
    )
    [breach] = spend.breaches(
        law.document, proposal(law, amount=Decimal("5.00"), currency="EUR"), **legacy
    )
    assert breach.unpriced == [] and breach.limit_currency is None and breach.converted is None


def test_mixed_currencies_are_what_consults_the_conversion() -> None:
    law = constitution(LAW % ("USD", "amount <= 1000.0"))
    usd = SpendSnapshot(as_of=OBSERVED_AT)
    assert not spend.mixes_currencies(law.document, proposal(law), usd)
    assert spend.mixes_currencies(law.document, proposal(law, currency="EUR"), usd)
    eur_spend = SpendSnapshot(as_of=OBSERVED_AT, other_currencies={"EUR": spent("1")})
    assert spend.mixes_currencies(law.document, proposal(law), eur_spend)


def test_the_gate_escalates_a_base_currency_allowance_the_usd_limit_counts_past() -> None:
    """A rule allows any payment to a verified vendor; the USD daily limit counts KWD 999 as
    $3,246.75, so it goes to a human, and KWD 600 ($1,950) executes on its own."""
    law = constitution(LAW % ("USD", "vendor.verified"))
    invoice = Invoice(
        invoice_id="INV-1",
        vendor_id="v1",
        vendor_name="Bluebird",
        amount=Decimal("999.000"),
        currency="KWD",
        due_date=OBSERVED_AT.date(),
        status="open",
    )
    seen = observation(
        vendors=[Vendor(vendor_id="v1", name="Bluebird", verified=True)],
        invoices=[invoice],
        spend=SpendSnapshot(as_of=OBSERVED_AT),
        rates=[rate("KWD", "3.25")],
    )
    kwd = proposal(law, amount=Decimal("999.000"), currency="KWD")
    verdict = gate.evaluate(law, kwd, seen)
    assert verdict.outcome == "escalate", verdict.explanation
    assert [b.converted for b in verdict.limits] == [Decimal("3246.75")]
    without_rate = gate.evaluate(law, kwd, seen.model_copy(update={"rates": []}))
    assert without_rate.outcome == "escalate" and without_rate.limits[0].unpriced == ["KWD"]
    small = proposal(law, amount=Decimal("600.000"), currency="KWD")  # $1,950
    assert (
        gate.evaluate(
            law,
            small,
            seen.model_copy(
                update={"invoices": [invoice.model_copy(update={"amount": Decimal("600.000")})]}
            ),
        ).outcome
        == "execute"
    )
