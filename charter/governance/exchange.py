"""Money in another currency, counted against a limit in one: converted with recorded rates.

A limit is in one currency; proposals and the ledger's spend may be in others. Each amount
is converted with the tenant's exchange rates as the run's observation recorded them
(Charter's own, set by an owner with their source and time), never with a model's or a
connector's figure. Without a usable rate (none, or quoted more than `RATE_MAX_AGE` before
the observation) an amount is unpriced: the limit cannot count it, so nothing fits under it
and a human decides. A converted amount is rounded up to the limit currency's minor unit:
a conversion never makes room under a limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from charter.governance.money import minor_units
from schemas import ExchangeRate

#: How old a quoted rate may be at the observation and still convert (a weekend and more).
RATE_MAX_AGE = timedelta(days=7)


@dataclass(frozen=True)
class Converted:
    amount: Decimal
    rates: tuple[str, ...]
    """The rates used, as a human reads them; empty when nothing needed converting."""


def described(rate: ExchangeRate) -> str:
    return f"{rate.currency}->{rate.base} {rate.rate} ({rate.source}, {rate.as_of.isoformat()})"


class Rates:
    """The conversions one observation's rates allow, at the observation's time."""

    def __init__(self, rates: Sequence[ExchangeRate], at: datetime) -> None:
        self._quoted = {(r.currency, r.base): r for r in rates if r.as_of >= at - RATE_MAX_AGE}

    def convert(self, amount: Decimal, source: str, target: str) -> Converted | None:
        """`amount` of `source` in `target`, rounded up; None when no usable rate links them."""
        if source == target:
            return Converted(amount, ())
        path = self._path(source, target)
        if path is None:
            return None
        value, used = amount, []
        for rate, inverse in path:
            value = value / rate.rate if inverse else value * rate.rate
            used.append(described(rate))
        step = Decimal(1).scaleb(-minor_units(target))
        return Converted(value.quantize(step, rounding=ROUND_CEILING), tuple(used))

    def _path(self, source: str, target: str) -> list[tuple[ExchangeRate, bool]] | None:
        """Rates from `source` to `target`: direct, inverse, or through one common base."""
        if (direct := self._quoted.get((source, target))) is not None:
            return [(direct, False)]
        if (inverse := self._quoted.get((target, source))) is not None:
            return [(inverse, True)]
        for (currency, base), there in sorted(self._quoted.items()):
            back = self._quoted.get((target, base))
            if currency == source and back is not None:
                return [(there, False), (back, True)]
        return None
