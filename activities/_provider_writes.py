"""A write at the provider under an action's idempotency key: made at most once, found again.

A provider forgets idempotency keys after a while, and an earlier attempt may have been
applied with its answer lost (worker killed, timeout): the write is looked up by its key
before anything is created, and again when a request's outcome is unknown.
"""

from __future__ import annotations

from activities._connector_errors import activity_error
from charter.connectors import ActionRefusedByBooks, BooksWriter, ConnectorError, OutcomeUnknown
from charter.connectors.base import WriteLookup
from charter.temporal.errors import CatalogueError
from schemas import Proposal
from schemas.errors import ErrorType


async def perform(writer: BooksWriter, proposal: Proposal, key: str) -> str:
    """The provider's reference for the action under `key`, made at most once.

    When a request's outcome is unknown, the provider is asked again; if the write is still
    not there, the attempt fails retryably and the next one asks before it creates anything.
    A refusal by the books (`ActionRefusedByBooks`) is the caller's to record.
    """
    try:
        found = await writer.find(key)
        if found is not None:
            return found
        try:
            return await writer.execute(proposal, key)
        except OutcomeUnknown as exc:
            found = await writer.find(key)
            if found is not None:
                return found
            raise CatalogueError(
                ErrorType.OUTCOME_UNKNOWN,
                f"{exc}; not found at the provider, the next attempt looks again first",
            ) from None
    except ActionRefusedByBooks:
        raise
    except ConnectorError as exc:
        raise activity_error(exc) from None


async def find_earlier(finder: WriteLookup, key: str) -> str | None:
    """The reference of a write an earlier attempt made under `key`, asked with a read
    credential; None when the provider holds none."""
    try:
        return await finder.find(key)
    except ConnectorError as exc:
        # Not knowing is no licence to judge again and perhaps pay twice: ask again.
        raise CatalogueError(ErrorType.PROVIDER_UNAVAILABLE, str(exc)) from None
