"""Modern Treasury, through its official SDK: paying vendors, and whom it has verified."""

from charter.connectors.modern_treasury.client import PROVIDER, ModernTreasurySettings
from charter.connectors.modern_treasury.payments import ModernTreasuryPayments, PaymentOrderLookup

__all__ = ["PROVIDER", "ModernTreasuryPayments", "ModernTreasurySettings", "PaymentOrderLookup"]
