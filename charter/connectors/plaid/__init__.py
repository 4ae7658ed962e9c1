"""Plaid, through plaid-python: bank balances and recent transactions, read only."""

from charter.connectors.plaid.bank import (
    ITEM_CREDENTIAL,
    PROVIDER,
    BankTransaction,
    PlaidBank,
    PlaidSettings,
)

__all__ = ["ITEM_CREDENTIAL", "PROVIDER", "BankTransaction", "PlaidBank", "PlaidSettings"]
