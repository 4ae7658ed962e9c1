"""What Charter itself has recorded as spent: the source of the `spend.*` facts and limits.

Never from the model or the connector: these sums come from Charter's ledger of executed
actions and live reservations, kept in the same transaction as each write.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from schemas.frozen import FrozenModel


class SpendTotals(FrozenModel):
    """Sums over one rolling window, in the ledger's currency."""

    total: Decimal = Decimal(0)
    autonomous: Decimal = Decimal(0)
    counterparty: dict[str, Decimal] = {}
    """By payee identity (`vendor:<id>` for invoices, else `name:<counterparty>`)."""
    agent: dict[str, Decimal] = {}
    action: dict[str, Decimal] = {}


class SpendSnapshot(FrozenModel):
    """The ledger's sums per window at `as_of`."""

    as_of: datetime
    currency: str = "USD"
    windows: dict[str, SpendTotals] = {}
    """The sums in `currency`."""
    other_currencies: dict[str, dict[str, SpendTotals]] = {}
    """The sums in every other currency, by currency then window, as spent (unconverted):
    a limit converts them with the rates the observation records."""


class ExchangeRate(FrozenModel):
    """What one unit of `currency` is worth in `base`, as `source` quoted it at `as_of`."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    base: str = Field(pattern=r"^[A-Z]{3}$")
    rate: Decimal = Field(gt=0)
    source: str = Field(min_length=1, max_length=200)
    as_of: datetime
