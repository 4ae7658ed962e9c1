"""The two halves of a connector.

`BooksReader` is all the read activity ever receives: it has no method that changes
anything. `BooksWriter` is obtained only inside the act activity, after the gate and the
recorded approval have been checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from charter.runtime.retry_after import retry_after_seconds
from schemas import Observation, Proposal


class ConnectorError(RuntimeError):
    pass


class UnsupportedAction(ConnectorError):
    pass


class ConnectorAuthError(ConnectorError):
    """The connector refused the credential (wrong connector, scope, shape, expired, revoked)."""


class OutcomeUnknown(ConnectorError):
    """The request may or may not have been applied (timeout, dropped connection, 5xx).

    Never answered by sending a new request: the caller looks the write up by its
    idempotency key first."""


class ProviderUnavailable(ConnectorError):
    """The provider turned the request away before applying it (rate limit); try later.

    `retry_after`: how long the provider asked to be left alone (its `Retry-After`, read by
    `retry_after`); the next attempt waits that long, not Temporal's backoff."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(value: str | None) -> timedelta | None:
    """A `Retry-After` header's wait (`charter.runtime.retry_after`), never under a second;
    None when there is none to honour."""
    seconds = retry_after_seconds(value)
    return None if seconds is None else timedelta(seconds=max(seconds, 1.0))


class ProviderRefused(ConnectorError):
    """The provider answered a write with a client error (401, 403, 404, 422...): it applied
    nothing, and sending the same request again cannot change that. The action was
    authorised, so this is a human's business, with the provider's own words."""

    def __init__(self, message: str, *, status: int, provider_error: str) -> None:
        super().__init__(message)
        self.status = status
        self.provider_error = provider_error


class ActionRefusedByBooks(ConnectorError):
    """The books no longer allow the action (the invoice was paid meanwhile, say).
    Retrying cannot help; nothing was written."""


class FactsAtExecution(Protocol):
    async def facts_at_execution(self, agent: str, proposal: Proposal) -> Observation:
        """The records the proposal's rules look at, as they are at the moment it executes.

        Books kept in Charter's database are re-read under row locks held until the caller's
        transaction (the act's write intent) ends. A provider's books, which no transaction
        here can lock, are read afresh just before that transaction opens, so no provider
        call is ever made while it holds the tenant's spend lock (`FactsReadBefore`)."""
        ...


class BooksReader(FactsAtExecution, Protocol):
    name: str

    async def snapshot(self, agent: str, focus: list[str]) -> Observation: ...


@dataclass(frozen=True)
class FactsReadBefore:
    """A reader of facts a provider gave just before the act's transaction opened."""

    observation: Observation

    async def facts_at_execution(self, agent: str, proposal: Proposal) -> Observation:
        return self.observation


@dataclass(frozen=True)
class KeyLifetime:
    """How long a provider can be relied on about a write made under an idempotency key."""

    retention: timedelta
    """How long the provider holds a key (less a safety margin): within it, the same
    request with the same key returns the write already made instead of a second one."""
    list_lag: timedelta
    """How long after a request (its timeout included) its write may still be missing from
    the provider's lists: a lookup that finds nothing proves nothing before then."""


class WriteLookup(Protocol):
    """Finds a write made under an idempotency key, with a read credential."""

    name: str
    key_lifetime: KeyLifetime | None

    async def find(self, idempotency_key: str) -> str | None: ...


class BooksWriter(Protocol):
    name: str
    key_lifetime: KeyLifetime | None
    """None where a write is committed with its record (the demo books)."""

    async def find(self, idempotency_key: str) -> str | None:
        """The reference of a write already made under this key, if the provider has one.

        Asked before every `execute`: an earlier attempt may have been applied and its
        answer lost (worker killed, timeout), and a provider forgets idempotency keys after
        a while, so its idempotency alone cannot be relied on."""
        ...

    async def execute(self, proposal: Proposal, idempotency_key: str) -> str:
        """Carry out the action once; return the connector's reference for it."""
        ...
