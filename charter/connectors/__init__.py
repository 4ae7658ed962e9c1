"""Connectors: a read interface with no write methods, and a separate write interface."""

from charter.connectors.base import (
    ActionRefusedByBooks,
    BooksReader,
    BooksWriter,
    ConnectorAuthError,
    ConnectorError,
    OutcomeUnknown,
    ProviderUnavailable,
    UnsupportedAction,
)

__all__ = [
    "ActionRefusedByBooks",
    "BooksReader",
    "BooksWriter",
    "ConnectorAuthError",
    "ConnectorError",
    "OutcomeUnknown",
    "ProviderUnavailable",
    "UnsupportedAction",
]
