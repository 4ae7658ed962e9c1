"""Temporal glue: the plugin every client, worker and replayer uses, the search attributes
Charter registers, and the codec server that lets the Temporal UI show encrypted payloads."""

from charter.temporal.connection import connect
from charter.temporal.plugin import CharterPlugin, data_converter

__all__ = ["CharterPlugin", "connect", "data_converter"]
