"""Watching for bills paid twice at the provider, in the worker: a metric, an audit entry
and a notice for each one found, so that nobody has to run `charter actions reconcile` to
learn of it.

Every `interval` the worker lists, with read credentials and no transaction open, every
order at the payments provider of each bill Charter paid (`duplicate_payments`). A bill
with more than one live order is critical: the first worker to find a given set of orders
audits it (`duplicate_payment_found`, under a lock per tenant and bill so that replicas
do not repeat it) and tells the tenant's channel; the gauge `charter_duplicate_payments`
counts such bills across tenants (no tenant in a label; every worker reports the same
total, so aggregate with `max`). An owner cancels one with `charter actions
cancel-duplicate` while the provider still allows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import asyncpg
from temporalio.common import MetricGauge, MetricMeter

from charter.connectors.base import ConnectorError
from charter.notify.notifier import Alert, Notifier, deliver_alert
from charter.services.duplicate_payments import (
    DuplicatePayment,
    duplicate_detail,
    duplicate_payments,
)
from charter.storage import Database, audit_trail
from charter.storage.credential_vault import ScopedCredentials

log = logging.getLogger(__name__)

FOUND = "duplicate_payment_found"


def _orders(duplicate: DuplicatePayment) -> list[str]:
    return sorted(o.order_id for o in duplicate.orders)


async def _first_to_find(conn: asyncpg.Connection, duplicate: DuplicatePayment) -> bool:
    """Audit the finding unless this set of orders of the bill was audited already."""
    tenant = duplicate.tenant_id
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('charter.duplicate/' || $1 || '/' || $2, 0))",
        tenant,
        duplicate.bill,
    )
    seen = await conn.fetchval(
        "SELECT count(*) FROM charter.audit_entries WHERE tenant_id = $1 AND kind = $2 AND "
        "snapshot->>'bill' = $3 AND snapshot->'orders' = $4::jsonb",
        tenant,
        FOUND,
        duplicate.bill,
        json.dumps(_orders(duplicate)),
    )
    if seen:
        return False
    await audit_trail.append(
        conn,
        tenant,
        FOUND,
        {
            "bill": duplicate.bill,
            "orders": _orders(duplicate),
            "detail": duplicate_detail(duplicate),
        },
        actor="charter",
    )
    return True


async def look(db: Database, readers: ScopedCredentials, notifier: Notifier) -> int:
    """One round over every tenant: audit and tell what is new; the bills doubled now."""
    doubled = 0
    for tenant in await db.tenant_ids():
        try:
            found = await duplicate_payments(db, tenant, readers)
        except ConnectorError as exc:  # not knowing is not "none": the next round asks again
            log.warning("duplicate payments not checked for a tenant: %s", type(exc).__name__)
            continue
        doubled += len(found)
        for duplicate in found:
            async with db.tenant(tenant) as conn:
                new = await _first_to_find(conn, duplicate)
            if new:
                await deliver_alert(
                    notifier, Alert(tenant_id=tenant, text=duplicate_detail(duplicate))
                )
    return doubled


class DuplicatePaymentsWatch:
    def __init__(self, meter: MetricMeter | None) -> None:
        self._gauge: MetricGauge | None = (
            None
            if meter is None
            else meter.create_gauge(
                "charter_duplicate_payments", "Bills with more than one live payment order"
            )
        )

    async def watch(
        self, db: Database, readers: ScopedCredentials, notifier: Notifier, interval: timedelta
    ) -> None:
        """Look every `interval` until cancelled; a failed round is logged and retried."""
        while True:
            try:
                doubled = await look(db, readers, notifier)
                if self._gauge is not None:
                    self._gauge.set(doubled)
            except Exception as exc:  # the database away for a moment must not stop the worker
                log.warning("duplicate payments not watched: %s", type(exc).__name__)
            await asyncio.sleep(interval.total_seconds())
