"""Exact money on its way into CEL.

CEL has no decimal type. An amount reaches a condition as a double only when that double
denotes exactly the decimal the books hold: at most the currency's minor-unit decimals and
far below 2**53 minor units, so distinct amounts stay distinct doubles and a comparison
(`amount <= 5000.0`) is decided exactly. Anything else (1440.0000000000001, 4999.999999, 12
yen and a half) is not an amount the books could pay, and the gate denies it before any
rule runs. Differences the rules need (`invoice.outstanding`) are computed here in Decimal,
not by subtracting doubles inside a condition.
"""

from __future__ import annotations

from decimal import Decimal

#: ISO 4217 minor units where they are not the usual two decimals.
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "VND": 0,
}

#: Largest amount Charter judges: 10**12 units (well inside a double's exact integers even in
#: minor units of three decimals).
MAX_AMOUNT = Decimal(10) ** 12


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def is_exact(amount: Decimal, currency: str) -> bool:
    """Whether `amount` is a payable amount of `currency`: finite, in range, no sub-unit part."""
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        return False
    return amount == amount.quantize(Decimal(1).scaleb(-minor_units(currency)))


def to_cel(amount: Decimal) -> float:
    """The double CEL compares. Raises if the double would not denote `amount` exactly."""
    value = float(amount)
    if Decimal(repr(value)) != amount:
        raise ValueError(f"amount {amount} has no exact double; judge it as inexact")
    return value
