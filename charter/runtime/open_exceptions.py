"""The `charter_open_exceptions{agent}` gauge: exceptions waiting for a human, counted from
the database.

A count, not increments on open and close: every worker reports the same total of the
database (aggregate the workers' series with `max`, not `sum`), and a restarted worker
reports it at once instead of starting from zero. The application role sees one tenant per
transaction, so the count goes tenant by tenant (ids from the owner's narrow definer
function) and only the per-agent totals leave the process: no tenant in a label.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.common import MetricGauge, MetricMeter

from charter.storage import Database, runs

log = logging.getLogger(__name__)


async def count(db: Database) -> dict[str, int]:
    """Open exceptions of every tenant, summed by agent."""
    return await db.summed_over_tenants(runs.open_exceptions_by_agent)


class OpenExceptionsGauge:
    def __init__(self, meter: MetricMeter) -> None:
        self._gauge: MetricGauge = meter.create_gauge(
            "charter_open_exceptions", "Exceptions waiting for a human, by agent"
        )
        self._agents: set[str] = set()

    async def refresh(self, db: Database) -> dict[str, int]:
        totals = await count(db)
        # An agent whose last exception closed drops to 0 rather than keeping its old value.
        self._agents |= set(totals)
        for agent in sorted(self._agents):
            self._gauge.set(totals.get(agent, 0), {"agent": agent})
        return totals

    async def publish(self, db: Database, interval: timedelta) -> None:
        """Refresh every `interval` until cancelled; a failed count is logged and retried."""
        while True:
            try:
                await self.refresh(db)
            except Exception as exc:  # the database away for a moment must not stop the worker
                log.warning("open exceptions not counted: %s", type(exc).__name__)
            await asyncio.sleep(interval.total_seconds())
