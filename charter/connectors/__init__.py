"""Connectors: a read interface with no write methods, and a separate write interface."""

from charter.connectors.base import (
    ActionRefusedByBooks,
    BooksReader,
    BooksWriter,
    ConnectorError,
    UnsupportedAction,
)

__all__ = [
    "ActionRefusedByBooks",
    "BooksReader",
    "BooksWriter",
    "ConnectorError",
    "UnsupportedAction",
]
