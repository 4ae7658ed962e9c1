"""Every activity heartbeats while it runs, so a dead worker is noticed in seconds.

Without heartbeats Temporal learns that a worker died only when the start-to-close timeout
expires (a minute, five for the model call), and a human's decision waits that long. With
them the workflow sets a short heartbeat timeout on every activity and a killed worker's
attempt is retried elsewhere after `HEARTBEAT_TIMEOUT`.

The beat runs on the worker's event loop beside the activity, so it says "this process is
alive", not "this activity is making progress": a request stuck on the network is still
bounded by its own timeout and the start-to-close timeout.

An activity may also record progress (`progress(...)`): the details ride on every later
beat, and the next attempt reads them from `activity.info().heartbeat_details`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

#: What the workflow allows between two beats before it gives the attempt up.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
#: A beat every few seconds; the SDK itself sends at most one per 80% of the timeout.
_BEAT_EVERY = HEARTBEAT_TIMEOUT.total_seconds() / 4

#: The details of the current attempt, shared (one list) by the activity and its beat.
_details: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("heartbeat_details")


def progress(*details: Any) -> None:
    """Record how far this attempt got; sent now and with every later beat."""
    shared = _details.get(None)
    if shared is not None:
        shared[:] = details
    activity.heartbeat(*details)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        # A local activity has no heartbeat timeout: the workflow task it runs in is what a
        # dead worker loses, and the server gives that task to another worker.
        if not inspect.iscoroutinefunction(input.fn) or activity.info().is_local:
            return await self.next.execute_activity(input)
        shared: list[Any] = []
        _details.set(shared)

        async def beat() -> None:
            while True:
                activity.heartbeat(*shared)
                await asyncio.sleep(_BEAT_EVERY)

        beating = asyncio.create_task(beat())
        try:
            return await self.next.execute_activity(input)
        finally:
            beating.cancel()


class Heartbeats(Interceptor):
    """The worker interceptor that keeps every async activity beating."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)
