"""The act's write lease, kept while its provider call is in flight.

The lease is claimed with the write intent and committed; the call then runs with no
transaction and no pooled connection held. Beside it, on the heartbeat's cadence, a short
transaction pushes the lease's expiry out. If the lease cannot be renewed before it would
expire (the database unreachable, or another attempt took it over), the call is cancelled:
past its expiry another attempt may take the write over, and the two must not overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import asyncpg

from charter.storage import Database, leases
from charter.temporal.errors import CatalogueError
from charter.temporal.heartbeats import HEARTBEAT_TIMEOUT
from schemas.errors import ErrorType

T = TypeVar("T")

#: How long a lease lasts unrenewed: a killed worker's write is taken over this long after
#: its last renewal, a few seconds after Temporal has given its attempt up (the heartbeat
#: timeout). Three renewals long, so one slow renewal does not cost the call.
LEASE_TTL = timedelta(seconds=15)
#: Renewed on the heartbeat's cadence.
RENEW_EVERY = HEARTBEAT_TIMEOUT.total_seconds() / 2
#: The call is given up this long before the lease would lapse unrenewed.
_MARGIN = 5.0
#: How long an attempt waits for another's live lease on the same record to end.
WAIT_FOR_LEASE = timedelta(seconds=20)
_POLL = 0.5


class LeaseLost(CatalogueError):
    """The lease could not be kept while the provider call ran: the call was cancelled and
    the next attempt looks the write up before it makes it."""

    def __init__(self, why: str) -> None:
        super().__init__(
            ErrorType.CONCURRENT, f"write lease lost while calling the provider: {why}"
        )


@dataclass(frozen=True)
class WriteLease:
    tenant_id: str
    subject: str
    holder: str


def new_holder() -> str:
    """An attempt's name on the leases it holds: random, so it says nothing of the run."""
    return uuid.uuid4().hex


async def while_leased(db: Database, lease: WriteLease, call: Awaitable[T]) -> T:
    """`call`'s result, the lease renewed while it runs; `LeaseLost` if it could not be."""
    work = asyncio.ensure_future(call)
    keeper = asyncio.create_task(_keep(db, lease))
    try:
        await asyncio.wait({work, keeper}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return work.result()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        keeper.result()  # raises the reason
        raise LeaseLost("renewal stopped")
    finally:
        for task in (work, keeper):
            task.cancel()


async def _keep(db: Database, lease: WriteLease) -> None:
    """Renew until cancelled; returns (raising `LeaseLost`) only when the lease is lost."""
    lapses = time.monotonic() + LEASE_TTL.total_seconds()
    while True:
        await asyncio.sleep(RENEW_EVERY)
        sent = time.monotonic()
        try:
            async with db.tenant(lease.tenant_id) as conn:
                renewed = await leases.renew(
                    conn, lease.tenant_id, lease.subject, lease.holder, LEASE_TTL
                )
        except (asyncpg.PostgresError, OSError):
            if time.monotonic() >= lapses - _MARGIN:
                raise LeaseLost("the database could not renew it in time") from None
            continue
        if renewed is None:
            raise LeaseLost("another attempt took it over")
        lapses = sent + LEASE_TTL.total_seconds()


async def ended(db: Database, tenant_id: str, subject: str, holder: str) -> bool:
    """Wait, within `WAIT_FOR_LEASE`, until no other attempt's lease on `subject` is live;
    whether none is."""
    deadline = time.monotonic() + WAIT_FOR_LEASE.total_seconds()
    while True:
        async with db.tenant(tenant_id) as conn:
            found = await leases.current(conn, tenant_id, subject)
        if found is None or not found.live or found.holder == holder:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)


async def give_up(db: Database, lease: WriteLease) -> None:
    """Release the lease after a call that failed: the next attempt need not wait for it to
    lapse. Best effort: unreleased, it lapses after `LEASE_TTL`."""
    with contextlib.suppress(asyncpg.PostgresError, OSError):
        async with db.tenant(lease.tenant_id) as conn:
            await leases.end(conn, lease.tenant_id, lease.subject, lease.holder, "released")
