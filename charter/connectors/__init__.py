"""Connectors: a read interface with no write methods, and a separate write interface."""

from charter.connectors.base import (
    ActionRefusedByBooks,
    BooksReader,
    BooksWriter,
    ConnectorAuthError,
    ConnectorError,
    KeyLifetime,
    OutcomeUnknown,
    ProviderRefused,
    ProviderUnavailable,
    UnsupportedAction,
)

__all__ = [
    "ActionRefusedByBooks",
    "BooksReader",
    "BooksWriter",
    "ConnectorAuthError",
    "ConnectorError",
    "KeyLifetime",
    "OutcomeUnknown",
    "ProviderRefused",
    "ProviderUnavailable",
    "UnsupportedAction",
]
