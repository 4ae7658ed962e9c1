"""The key of a payment of a bill: the same for the same payment, different otherwise."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from charter.governance.payment_identity import KEY_LENGTH, PaymentIdentity, payment_key

BILL = PaymentIdentity(
    tenant_id="acme",
    provider="modern-treasury",
    bill_id="qbo-146",
    amount=Decimal("1440.00"),
    currency="USD",
)


def test_the_same_payment_has_the_same_key_however_its_amount_is_spelt() -> None:
    for amount in ("1440", "1440.0", "1440.000", "1.44E+3"):
        assert payment_key(replace(BILL, amount=Decimal(amount))) == payment_key(BILL)
    assert len(payment_key(BILL)) == KEY_LENGTH
    assert payment_key(replace(BILL, currency="usd")) == payment_key(BILL)


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": "globex"},
        {"provider": "demo-books"},
        {"bill_id": "qbo-147"},
        {"amount": Decimal("1440.01")},
        {"currency": "EUR"},
        {"sequence": 1},
    ],
)
def test_any_part_of_the_identity_changes_the_key(change: dict[str, object]) -> None:
    assert payment_key(replace(BILL, **change)) != payment_key(BILL)  # type: ignore[arg-type]


def test_a_negative_sequence_or_a_missing_bill_is_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        replace(BILL, sequence=-1)
    with pytest.raises(ValueError, match="tenant, provider and bill"):
        replace(BILL, bill_id="")
