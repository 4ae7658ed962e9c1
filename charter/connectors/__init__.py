"""Connectors: a read interface with no write methods, and a separate write interface."""

from charter.connectors.base import BooksReader, BooksWriter, ConnectorError, UnsupportedAction

__all__ = ["BooksReader", "BooksWriter", "ConnectorError", "UnsupportedAction"]
