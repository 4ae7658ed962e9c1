"""What Charter itself has recorded as spent: the source of the `spend.*` facts and limits.

Never from the model or the connector: these sums come from Charter's ledger of executed
actions and live reservations, kept in the same transaction as each write.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

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
