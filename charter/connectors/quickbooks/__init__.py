"""QuickBooks Online, through python-quickbooks: open bills and vendors, OAuth with refresh."""

from charter.connectors.quickbooks.bills import Bill, QuickBooksBills, VendorRecord
from charter.connectors.quickbooks.client import (
    APP_CREDENTIAL,
    PROVIDER,
    QuickBooksSettings,
    refreshed,
)

__all__ = [
    "APP_CREDENTIAL",
    "PROVIDER",
    "Bill",
    "QuickBooksBills",
    "QuickBooksSettings",
    "VendorRecord",
    "refreshed",
]
