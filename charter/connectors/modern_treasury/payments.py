"""Paying a vendor's bill with a Modern Treasury payment order, exactly once.

Every payment order carries the action's idempotency key twice: as the request's
Idempotency-Key (so a re-sent request returns the same order) and in its metadata (so the
order can be found again after the provider has forgotten the key, or when nobody knows
whether the request arrived). `find` searches by that metadata; the act activity asks it
before every `execute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from modern_treasury import AsyncModernTreasury

from charter.connectors.base import ActionRefusedByBooks, KeyLifetime, UnsupportedAction
from charter.connectors.modern_treasury.client import (
    PROVIDER,
    ModernTreasurySettings,
    client,
    translated,
)
from charter.connectors.modern_treasury.counterparties import named, verified_account
from charter.storage.credential_vault import Credential
from schemas import Proposal

#: Metadata keys Charter puts on every payment order it creates.
KEY_FIELD = "charter_idempotency_key"
REFERENCE_FIELD = "charter_reference"

#: Statuses of a payment order that no longer moves money; anything else may or did.
_DEAD = frozenset({"cancelled", "denied", "failed", "returned", "reversed", "stopped"})

#: Statuses in which Modern Treasury still lets an order be cancelled (`PATCH` to
#: `cancelled`): before it was sent to the bank.
_CANCELLABLE = frozenset({"approved", "needs_approval"})


@dataclass(frozen=True)
class OrderAtProvider:
    order_id: str
    status: str
    idempotency_key: str | None
    moves_money: bool
    cancellable: bool


#: ISO 4217 currencies without minor units; the rest used here have two.
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "CLP", "ISK", "VND", "XOF", "XAF"})


def minor_units(amount: Decimal, currency: str) -> int:
    """The amount in the currency's smallest unit; refuses a fraction of that unit."""
    exponent = 0 if currency in _ZERO_DECIMAL else 2
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ActionRefusedByBooks(f"{amount} {currency} is not a whole number of minor units")
    return int(scaled)


class PaymentOrderLookup:
    """Finds the payment order made under an idempotency key. Needs only a read key, so
    reconciliation never holds a credential that could pay."""

    name = PROVIDER

    def __init__(self, settings: ModernTreasurySettings, credential: Credential) -> None:
        self._settings = settings
        self._credential = credential
        self.key_lifetime: KeyLifetime | None = settings.key_lifetime()

    async def find(self, idempotency_key: str) -> str | None:
        live: list[str] = []
        dead: list[str] = []
        async with client(self._settings, self._credential) as mt:
            with translated("looking up a payment order", writing=False):
                async for order in mt.payment_orders.list(metadata={KEY_FIELD: idempotency_key}):
                    (dead if order.status in _DEAD else live).append(order.id)
        # Created under one key, there is one order; a dead one still records what was done.
        found = live or dead
        return found[0] if found else None

    async def orders_for_bill(self, reference: str) -> list[OrderAtProvider]:
        """Every payment order Charter made for the bill, whatever its key or status."""
        orders: list[OrderAtProvider] = []
        async with client(self._settings, self._credential) as mt:
            with translated("listing the payment orders of a bill", writing=False):
                async for order in mt.payment_orders.list(metadata={REFERENCE_FIELD: reference}):
                    orders.append(
                        OrderAtProvider(
                            order_id=order.id,
                            status=order.status,
                            idempotency_key=order.metadata.get(KEY_FIELD),
                            moves_money=order.status not in _DEAD,
                            cancellable=order.status in _CANCELLABLE,
                        )
                    )
        return orders


class ModernTreasuryPayments:
    """The write half for Modern Treasury: only `schedule_payment`, to verified accounts."""

    name = PROVIDER

    def __init__(self, settings: ModernTreasurySettings, credential: Credential) -> None:
        self._settings = settings
        self._credential = credential
        self._lookup = PaymentOrderLookup(settings, credential)
        self.key_lifetime: KeyLifetime | None = settings.key_lifetime()

    async def find(self, idempotency_key: str) -> str | None:
        return await self._lookup.find(idempotency_key)

    async def execute(self, proposal: Proposal, idempotency_key: str) -> str:
        if proposal.action != "schedule_payment":
            raise UnsupportedAction(f"{PROVIDER} cannot perform {proposal.action!r}")
        if proposal.amount is None or not proposal.reference or not proposal.counterparty:
            raise ActionRefusedByBooks("a payment needs an amount, a bill reference and a payee")
        amount = minor_units(proposal.amount, proposal.currency)
        async with client(self._settings, self._credential, writing=True) as mt:
            receiving = await self._verified_account(mt, proposal.counterparty)
            # Another run may have paid this bill since the gate judged it; the act activity
            # holds a lock on the bill while this check and the create run.
            with translated("checking earlier payments of the bill", writing=False):
                async for order in mt.payment_orders.list(
                    metadata={REFERENCE_FIELD: proposal.reference}
                ):
                    if (
                        order.status not in _DEAD
                        and order.metadata.get(KEY_FIELD) != idempotency_key
                    ):
                        raise ActionRefusedByBooks(
                            f"bill {proposal.reference!r} is already being paid by payment "
                            f"order {order.id} ({order.status})"
                        )
            with translated("creating the payment order", writing=True):
                order = await mt.payment_orders.create(
                    amount=amount,
                    currency=proposal.currency,  # type: ignore[arg-type]
                    direction="credit",
                    type=self._settings.payment_type,
                    originating_account_id=self._settings.originating_account_id,
                    receiving_account_id=receiving,
                    description=f"Bill {proposal.reference}",
                    metadata={KEY_FIELD: idempotency_key, REFERENCE_FIELD: proposal.reference},
                    idempotency_key=idempotency_key,
                )
        return order.id

    async def cancel(self, order_id: str) -> str:
        """Cancel a payment order not yet sent to the bank; the status it is left in.
        Modern Treasury allows it only while the order is `approved` or `needs_approval`;
        its refusal otherwise comes back as `ActionRefusedByBooks`."""
        async with client(self._settings, self._credential, writing=True) as mt:
            with translated("cancelling the payment order", writing=True):
                order = await mt.payment_orders.update(order_id, status="cancelled")
        return order.status

    async def _verified_account(self, mt: AsyncModernTreasury, payee: str) -> str:
        """The payee's one verified external account, re-checked at the moment of paying."""
        matches = await named(mt, payee)
        if len(matches) != 1:
            raise ActionRefusedByBooks(
                f"{len(matches)} Modern Treasury counterparties are named {payee!r}; "
                "need exactly one"
            )
        account = verified_account(matches[0])
        if account is None:
            raise ActionRefusedByBooks(
                f"counterparty {matches[0].id} ({payee!r}) has no single verified external "
                "account (0 verified, or more than one)"
            )
        return account
