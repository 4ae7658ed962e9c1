"""Calls out to a provider, each through the worker's bulkhead for that provider.

Every network call a connector makes for an activity goes through `through`: with no
database transaction open (refused otherwise), within the provider's bound of calls in
flight and its deadline, and counted by its circuit breaker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from charter.connectors.base import OutcomeUnknown, ProviderUnavailable
from charter.runtime.bulkheads import Bulkheads, ProviderLimits
from schemas.errors import ErrorType

T = TypeVar("T")

#: What a failure looks like once an activity has translated it (a `CatalogueError`).
_FAILED = frozenset({ErrorType.OUTCOME_UNKNOWN.value, ErrorType.PROVIDER_UNAVAILABLE.value})


def counts_against(exc: Exception) -> bool:
    """No answer, a 5xx, a rate limit: the provider's fault, counted by its breaker."""
    if isinstance(exc, OutcomeUnknown | ProviderUnavailable):
        return True
    return getattr(exc, "type", None) in _FAILED


def worker_bulkheads(
    default: ProviderLimits | None = None, per_provider: dict[str, ProviderLimits] | None = None
) -> Bulkheads:
    return Bulkheads(
        default=default or ProviderLimits(), per_provider=per_provider or {}, counts=counts_against
    )


async def through(bulkheads: Bulkheads, provider: str, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, made through the provider's bulkhead."""
    async with bulkheads.call(provider):
        return await call()


async def through_all(
    bulkheads: Bulkheads, providers: Iterable[str], call: Callable[[], Awaitable[T]]
) -> T:
    """`call()`, which reads from several providers, holding a slot of each (taken in name
    order, so that two such calls never each hold a slot the other waits for)."""
    async with contextlib.AsyncExitStack() as stack:
        for provider in sorted(set(providers)):
            await stack.enter_async_context(bulkheads.call(provider))
        return await call()
