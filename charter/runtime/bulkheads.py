"""Bulkheads: one slow or failing provider stalls only the calls to that provider.

Per provider, on one worker: at most `in_flight` calls at once, each within `call_timeout`,
and a circuit breaker that opens after `failures_to_open` failed or timed-out calls in a
row. While it is open no call is made; after `open_for` one trial call is let through
(half-open), and its outcome closes or re-opens the circuit. A caller waits at most `wait`
for a slot or for the circuit to close, then is told why (`NoSlot`, `CircuitOpen`).

A call is refused outright if the calling task holds a database transaction
(`HeldAcrossCall`): the connection, and any lock taken in it, would be held for as long as
the provider takes to answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from charter.storage.db import in_transaction

#: How often a caller waiting on an open circuit looks again.
_POLL = 0.25


@dataclass(frozen=True)
class ProviderLimits:
    in_flight: int = 4
    call_timeout: timedelta = timedelta(seconds=20)
    wait: timedelta = timedelta(seconds=15)
    failures_to_open: int = 5
    open_for: timedelta = timedelta(seconds=30)


class HeldAcrossCall(RuntimeError):
    """A provider was about to be called inside a database transaction: a bug, never retried
    into success."""


class Unavailable(Exception):
    """The provider is not called now; the message says why (ids and counts only)."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider


class NoSlot(Unavailable):
    pass


class CircuitOpen(Unavailable):
    pass


class CallTimedOut(Unavailable):
    pass


@dataclass
class Breaker:
    limits: ProviderLimits
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False

    def open_reason(self, now: float) -> str | None:
        """Why a call may not go now; None if it may (a half-open trial takes the turn)."""
        if self.opened_at is None:
            return None
        reopens = self.opened_at + self.limits.open_for.total_seconds()
        if now >= reopens and not self.trial:
            self.trial = True
            return None
        return (
            f"circuit open after {self.failures} failed or timed-out calls in a row "
            f"(tried again {max(0.0, reopens - now):.0f} s from now)"
        )

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.trial = 0, None, False

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.trial or self.failures >= self.limits.failures_to_open:
            self.opened_at, self.trial = now, False


@dataclass
class _Compartment:
    limits: ProviderLimits
    slots: asyncio.Semaphore
    breaker: Breaker


@dataclass
class Bulkheads:
    """The worker's compartments, one per provider, made on first use."""

    default: ProviderLimits = field(default_factory=ProviderLimits)
    per_provider: dict[str, ProviderLimits] = field(default_factory=dict)
    #: Whether an exception counts against the provider (no answer, 5xx, rate limits), as a
    #: timed-out call does. Any other exception is an answer.
    counts: Callable[[Exception], bool] = lambda exc: False
    _compartments: dict[str, _Compartment] = field(default_factory=dict)

    def limits(self, provider: str) -> ProviderLimits:
        return self.per_provider.get(provider, self.default)

    def _compartment(self, provider: str) -> _Compartment:
        found = self._compartments.get(provider)
        if found is None:
            limits = self.limits(provider)
            found = _Compartment(limits, asyncio.Semaphore(limits.in_flight), Breaker(limits))
            self._compartments[provider] = found
        return found

    async def closed(self, provider: str) -> None:
        """Wait, within the provider's bound, until its circuit lets a call through;
        `CircuitOpen` with the reason if it does not."""
        compartment = self._compartment(provider)
        deadline = time.monotonic() + compartment.limits.wait.total_seconds()
        while (reason := compartment.breaker.open_reason(time.monotonic())) is not None:
            if time.monotonic() >= deadline:
                raise CircuitOpen(provider, reason)
            await asyncio.sleep(_POLL)

    @asynccontextmanager
    async def call(self, provider: str) -> AsyncIterator[None]:
        """One call to `provider`: a slot, a closed circuit, a deadline, and its outcome
        counted."""
        if in_transaction():
            raise HeldAcrossCall(f"{provider} called inside a database transaction")
        compartment = self._compartment(provider)
        await self.closed(provider)
        try:
            await asyncio.wait_for(
                compartment.slots.acquire(), compartment.limits.wait.total_seconds()
            )
        except TimeoutError:
            raise NoSlot(
                provider, f"all {compartment.limits.in_flight} calls in flight; none finished"
            ) from None
        try:
            async with self._outcome(provider, compartment):
                yield
        finally:
            compartment.slots.release()

    @asynccontextmanager
    async def _outcome(self, provider: str, compartment: _Compartment) -> AsyncIterator[None]:
        breaker, timeout = compartment.breaker, compartment.limits.call_timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                yield
        except TimeoutError:
            breaker.failed(time.monotonic())
            raise CallTimedOut(provider, f"no answer within {timeout:.0f} s") from None
        except asyncio.CancelledError:
            # This caller gave up: says nothing about the provider; a trial goes to the next.
            breaker.trial = False
            raise
        except Exception as exc:
            if self.counts(exc):
                breaker.failed(time.monotonic())
            else:
                # An answer (a refusal, say): the provider is there.
                breaker.succeeded()
            raise
        breaker.succeeded()
