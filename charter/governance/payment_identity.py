"""The idempotency key of a payment of a bill, from what the payment is, not who sends it.

Every run, retry and reconciliation that pays the same bill of the same tenant, through the
same provider, the same amount in the same currency, computes the same key: the provider
dedups them, and a lookup by the key finds the one order whoever made it. Only the sequence
tells one payment of a bill from a later, deliberate one; it is advanced by a human alone
(`charter actions reconcile --pay-again`), never by a run. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from charter.audit.canonical import canonical_json, sha256_hex

#: Length of a key in hex characters: 128 bits, within every provider's key limit.
KEY_LENGTH = 32


@dataclass(frozen=True)
class PaymentIdentity:
    tenant_id: str
    provider: str
    bill_id: str
    """The bill's id at the provider that holds it (not its display number)."""
    amount: Decimal
    currency: str
    sequence: int = 0
    """0 for the first payment of the bill; only a human advances it."""

    def __post_init__(self) -> None:
        if self.sequence < 0:
            raise ValueError("a payment sequence is never negative")
        if not self.bill_id or not self.tenant_id or not self.provider:
            raise ValueError("a payment is identified by tenant, provider and bill")

    def as_dict(self) -> dict[str, str | int]:
        return {
            "tenant_id": self.tenant_id,
            "provider": self.provider,
            "bill_id": self.bill_id,
            "amount": _plain(self.amount),
            "currency": self.currency.upper(),
            "sequence": self.sequence,
        }


def _plain(amount: Decimal) -> str:
    """One spelling per amount: 1440, 1440.0 and 1440.00 are the same payment."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def payment_key(identity: PaymentIdentity) -> str:
    """The key sent as Idempotency-Key and put in the order's metadata."""
    return sha256_hex(canonical_json({"payment": identity.as_dict()}))[:KEY_LENGTH]
