"""Bulkheads: bounded calls in flight per provider, a deadline per call, a breaker that
opens after repeated failures and lets one trial through after a while."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from charter.connectors.base import ProviderUnavailable
from charter.connectors.calls import worker_bulkheads
from charter.runtime.bulkheads import (
    Bulkheads,
    CallTimedOut,
    CircuitOpen,
    HeldAcrossCall,
    NoSlot,
    ProviderLimits,
)
from charter.storage import Database

FAST = ProviderLimits(
    in_flight=2,
    call_timeout=timedelta(seconds=0.5),
    wait=timedelta(seconds=0.3),
    failures_to_open=3,
    open_for=timedelta(seconds=1),
)


def bulkheads() -> Bulkheads:
    return worker_bulkheads(FAST)


async def fail() -> None:
    raise ProviderUnavailable("503")


async def answer() -> str:
    return "ok"


async def call(b: Bulkheads, provider: str, what: object) -> object:
    async with b.call(provider):
        return await what()  # type: ignore[operator]


async def test_the_breaker_opens_after_repeated_failures_and_says_why() -> None:
    b = bulkheads()
    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            await call(b, "mt", fail)
    with pytest.raises(CircuitOpen, match="circuit open after 3 failed or timed-out calls"):
        await call(b, "mt", answer)
    # Another provider's compartment is untouched.
    assert await call(b, "plaid", answer) == "ok"


async def test_an_open_circuit_lets_one_trial_through_after_a_while() -> None:
    b = bulkheads()
    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            await call(b, "mt", fail)
    await asyncio.sleep(1.1)
    # The trial fails: open again at once, without three more failures.
    with pytest.raises(ProviderUnavailable):
        await call(b, "mt", fail)
    with pytest.raises(CircuitOpen):
        await call(b, "mt", answer)
    await asyncio.sleep(1.1)
    assert await call(b, "mt", answer) == "ok"
    # Closed: failures count from zero again.
    with pytest.raises(ProviderUnavailable):
        await call(b, "mt", fail)
    assert await call(b, "mt", answer) == "ok"


async def test_a_caller_waits_for_a_closing_circuit_within_the_bound() -> None:
    b = worker_bulkheads(
        ProviderLimits(
            failures_to_open=1, open_for=timedelta(seconds=0.5), wait=timedelta(seconds=2)
        )
    )
    with pytest.raises(ProviderUnavailable):
        await call(b, "mt", fail)
    # Open for 0.5 s, and this caller may wait 2 s: it gets the trial.
    assert await call(b, "mt", answer) == "ok"


async def test_calls_in_flight_are_bounded_and_a_caller_waits_only_so_long() -> None:
    b = bulkheads()
    release = asyncio.Event()
    running = 0
    most = 0

    async def slow() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    held = [asyncio.create_task(call(b, "mt", slow)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(NoSlot, match="all 2 calls in flight"):
        await call(b, "mt", answer)
    release.set()
    await asyncio.gather(*held)
    assert most == 2


async def test_a_call_past_its_deadline_is_given_up_and_counted() -> None:
    b = bulkheads()

    async def hang() -> None:
        await asyncio.sleep(30)

    for _ in range(3):
        with pytest.raises(CallTimedOut, match="no answer within"):
            await call(b, "mt", hang)
    with pytest.raises(CircuitOpen):
        await call(b, "mt", answer)


async def test_an_answer_that_refuses_is_not_a_failure() -> None:
    b = bulkheads()

    async def refuse() -> None:
        raise ValueError("422: the bill is paid")

    for _ in range(5):
        with pytest.raises(ValueError):
            await call(b, "mt", refuse)
    assert await call(b, "mt", answer) == "ok"


async def test_no_call_is_made_inside_a_database_transaction(db: Database, tenant: str) -> None:
    b = bulkheads()
    async with db.tenant(tenant):
        with pytest.raises(HeldAcrossCall):
            await call(b, "mt", answer)
    assert await call(b, "mt", answer) == "ok"
