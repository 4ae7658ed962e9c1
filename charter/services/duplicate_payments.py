"""Every order at the payments provider for each bill Charter paid, and the bills paid twice.

Read only, with a read credential: what `charter actions reconcile` and `charter audit
verify` report. More than one order that moves money for one bill is critical: a human
decides which to cancel (Modern Treasury lets an order be cancelled until it is sent to the
bank; Charter cancels nothing itself).
"""

from __future__ import annotations

from pydantic import BaseModel

from charter.connectors import registry
from charter.connectors.modern_treasury import PaymentOrderLookup
from charter.storage import Database
from charter.storage.connector_config import DEFAULT_PROVIDER
from charter.storage.credential_vault import ScopedCredentials

PAYMENT = "schedule_payment"


class OrderSeen(BaseModel):
    order_id: str
    status: str
    idempotency_key: str | None
    cancellable: bool


class DuplicatePayment(BaseModel):
    tenant_id: str
    bill: str
    orders: list[OrderSeen]
    severity: str = "critical"


async def _bills_paid(db: Database, tenant_id: str) -> list[str]:
    """Bills Charter recorded a payment of, or meant to pay (an intent)."""
    async with db.tenant(tenant_id) as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT proposal ->> 'reference' AS bill FROM charter.actions "
            "WHERE tenant_id = $1 AND action = $2 AND proposal ->> 'reference' IS NOT NULL "
            "UNION SELECT DISTINCT snapshot -> 'proposal' ->> 'reference' FROM "
            "charter.audit_entries WHERE tenant_id = $1 AND kind = 'action_intent' "
            "AND snapshot -> 'proposal' ->> 'action' = $2 "
            "AND snapshot -> 'proposal' ->> 'reference' IS NOT NULL",
            tenant_id,
            PAYMENT,
        )
    return sorted(str(r["bill"]) for r in rows)


async def duplicate_payments(
    db: Database, tenant_id: str, readers: ScopedCredentials
) -> list[DuplicatePayment]:
    """The tenant's bills with more than one live order at the provider (ConnectorError when
    the provider cannot be asked: not knowing is not "no duplicates")."""
    if readers.scope != "read":
        raise ValueError("looking for duplicate payments holds read credentials only")
    async with db.tenant(tenant_id) as conn:
        route = await registry.write_route(conn, tenant_id, PAYMENT)
        lookup = None
        if route.config.provider != DEFAULT_PROVIDER:
            credential = await registry.obtain(readers, conn, tenant_id, route.credential_connector)
            lookup = registry.lookup(route, credential)
    if not isinstance(lookup, PaymentOrderLookup):
        return []  # the demo books record a payment with its row: one per key
    found = []
    for bill in await _bills_paid(db, tenant_id):
        orders = await lookup.orders_for_bill(bill)
        live = [o for o in orders if o.moves_money]
        if len(live) > 1:
            seen = [
                OrderSeen(
                    order_id=o.order_id,
                    status=o.status,
                    idempotency_key=o.idempotency_key,
                    cancellable=o.cancellable,
                )
                for o in live
            ]
            found.append(DuplicatePayment(tenant_id=tenant_id, bill=bill, orders=seen))
    return found


def duplicate_detail(duplicate: DuplicatePayment) -> str:
    """One line for a human: what is doubled, and what can still be cancelled."""
    cancellable = [o.order_id for o in duplicate.orders if o.cancellable]
    can = f"; still cancellable (with a human's approval): {', '.join(cancellable)}"
    return (
        f"CRITICAL: bill {duplicate.bill} has {len(duplicate.orders)} payment orders that "
        f"move money{can if cancellable else '; none can still be cancelled'}"
    )
