"""Every order at the payments provider for each bill Charter paid, and the bills paid twice.

Read only, with a read credential: what `charter actions reconcile` and `charter audit
verify` report. More than one order that moves money for one bill is critical: a human
decides which to cancel (Modern Treasury lets an order be cancelled until it is sent to the
bank): `cancel_duplicate`, an owner's decision, audited before the provider is asked.
"""

from __future__ import annotations

from pydantic import BaseModel

from charter.connectors import registry
from charter.connectors.modern_treasury import PaymentOrderLookup
from charter.connectors.modern_treasury.payments import ModernTreasuryPayments
from charter.connectors.registry import WriteRoute
from charter.storage import Database, audit_trail, roster
from charter.storage.connector_config import DEFAULT_PROVIDER
from charter.storage.credential_vault import Credential, ScopedCredentials
from charter.storage.member_keys import owner_tenant

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
    lookup = await _lookup(db, tenant_id, readers)
    if lookup is None:
        return []  # the demo books record a payment with its row: one per key
    found = []
    for bill in await _bills_paid(db, tenant_id):
        live = await _live_orders(lookup, bill)
        if len(live) > 1:
            found.append(DuplicatePayment(tenant_id=tenant_id, bill=bill, orders=live))
    return found


async def _route(db: Database, tenant_id: str) -> WriteRoute:
    async with db.tenant(tenant_id) as conn:
        return await registry.write_route(conn, tenant_id, PAYMENT)


async def _credential(
    db: Database, tenant_id: str, holder: ScopedCredentials, route: WriteRoute
) -> Credential:
    async with db.tenant(tenant_id) as conn:
        return await registry.obtain(holder, conn, tenant_id, route.credential_connector)


async def _lookup(
    db: Database, tenant_id: str, readers: ScopedCredentials
) -> PaymentOrderLookup | None:
    """What lists a bill's orders at the tenant's payments provider, with a read key; None
    for the demo books."""
    if readers.scope != "read":
        raise ValueError("looking for duplicate payments holds read credentials only")
    route = await _route(db, tenant_id)
    if route.config.provider == DEFAULT_PROVIDER:
        return None
    lookup = registry.lookup(route, await _credential(db, tenant_id, readers, route))
    return lookup if isinstance(lookup, PaymentOrderLookup) else None


async def _live_orders(lookup: PaymentOrderLookup, bill: str) -> list[OrderSeen]:
    return [
        OrderSeen(
            order_id=o.order_id,
            status=o.status,
            idempotency_key=o.idempotency_key,
            cancellable=o.cancellable,
        )
        for o in await lookup.orders_for_bill(bill)
        if o.moves_money
    ]


class CancelRefused(Exception):
    """A duplicate that is not cancelled; the message says why, and nothing was sent."""


class Cancelled(BaseModel):
    bill: str
    order_id: str
    status: str
    kept: list[str]


async def cancel_duplicate(
    admin_dsn: str,
    db: Database,
    tenant_id: str,
    bill: str,
    order_id: str,
    *,
    by: str,
    readers: ScopedCredentials,
    writers: ScopedCredentials,
) -> Cancelled:
    """Cancel one of a bill's doubled orders, as an owner decided.

    Asked afresh at the provider first: the order must be one of more than one live order
    of the bill (the last one is never cancelled) and still cancellable. The owner's
    decision is audited (as the owner role) before the provider is asked to cancel, with no
    transaction open; what it answers is audited after."""
    lookup = await _lookup(db, tenant_id, readers)
    if lookup is None:
        raise CancelRefused(f"tenant {tenant_id!r} pays through the demo books: nothing to cancel")
    live = await _live_orders(lookup, bill)
    target = next((o for o in live if o.order_id == order_id), None)
    if target is None:
        raise CancelRefused(f"order {order_id} is not a live payment order of bill {bill}")
    if len(live) < 2:
        raise CancelRefused(f"order {order_id} is bill {bill}'s only live order: nothing doubled")
    if not target.cancellable:
        raise CancelRefused(f"order {order_id} is {target.status}: it can no longer be cancelled")
    kept = [o.order_id for o in live if o.order_id != order_id]
    decided = {"bill": bill, "order_id": order_id, "status": target.status, "kept": kept}
    async with owner_tenant(admin_dsn, tenant_id) as owner:
        if not await roster.is_owner(owner, tenant_id, by):
            raise CancelRefused(
                f"{by!r} is not an active owner of tenant {tenant_id!r}; only an owner cancels "
                "a payment order"
            )
        await audit_trail.append(
            owner, tenant_id, "duplicate_cancel_decided", decided, actor=f"member:{by}"
        )
    route = await _route(db, tenant_id)
    writer = registry.provider_writer(route, await _credential(db, tenant_id, writers, route))
    if not isinstance(writer, ModernTreasuryPayments):
        raise CancelRefused(f"provider {route.config.provider!r} cannot cancel an order")
    status = await writer.cancel(order_id)
    async with db.tenant(tenant_id) as conn:
        await audit_trail.append(
            conn, tenant_id, "duplicate_cancelled", {**decided, "status": status}, actor="charter"
        )
    return Cancelled(bill=bill, order_id=order_id, status=status, kept=kept)


def duplicate_detail(duplicate: DuplicatePayment) -> str:
    """One line for a human: what is doubled, and what can still be cancelled."""
    cancellable = [o.order_id for o in duplicate.orders if o.cancellable]
    can = f"; still cancellable (with a human's approval): {', '.join(cancellable)}"
    return (
        f"CRITICAL: bill {duplicate.bill} has {len(duplicate.orders)} payment orders that "
        f"move money{can if cancellable else '; none can still be cancelled'}"
    )
