"""The act's write lease: no transaction is held across the provider call, another attempt
at the same bill waits for a live lease and takes an expired one over, the lease is renewed
while the provider is slow, and a provider whose circuit is open sends the payment back to
a human with the reason."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities._leases as write_leases
from activities import Deps
from activities.act import ActActivities
from charter.connectors.calls import worker_bulkheads
from charter.reasoners import OfflineReasoner
from charter.runtime.bulkheads import ProviderLimits
from charter.services.reconcile import reconcile_tenant
from charter.storage import Database, audit_trail, leases, runs
from schemas import ActInput, Observation
from schemas.errors import ErrorType
from tests.activities.test_write_ahead import authorised_payment
from tests.support.calls_in_transactions import Calls
from tests.support.paying import pay_through, pending
from tests.support.standins.modern_treasury import Fault, ModernTreasuryStandIn
from tests.support.vault import session_vault


def act_with(db: Database, **deps: object) -> ActActivities:
    return ActActivities(
        Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner(), **deps)  # type: ignore[arg-type]
    )


async def paying_through_mt(db: Database, tenant: str, mt: ModernTreasuryStandIn) -> ActInput:
    await pay_through(db, tenant, mt, timeout="10", max_retries="0")
    return await authorised_payment(db, tenant)


def subject(req: ActInput) -> str:
    return leases.subject_of(req.proposal.action, req.proposal.reference, "")


async def lease_of(db: Database, req: ActInput) -> leases.Lease | None:
    async with db.tenant(req.run.tenant_id) as conn:
        return await leases.current(conn, req.run.tenant_id, subject(req))


async def test_the_provider_is_called_with_no_transaction_open(
    db: Database,
    tenant: str,
    mt: ModernTreasuryStandIn,
    no_request_inside_a_transaction: Calls,
) -> None:
    req = await paying_through_mt(db, tenant, mt)
    result = await ActivityEnvironment().run(act_with(db).act, req)
    assert result.status == "executed"
    sent = no_request_inside_a_transaction.sent
    # The counterparties read, the lookup before creating, the payment order itself.
    assert any(s.startswith("httpx POST") for s in sent), sent
    assert len(sent) >= 3
    assert no_request_inside_a_transaction.inside == []
    lease = await lease_of(db, req)
    assert lease is not None and lease.state == "done" and not lease.live


async def test_the_watch_catches_a_request_sent_inside_a_transaction(
    db: Database,
    tenant: str,
    mt: ModernTreasuryStandIn,
    no_request_inside_a_transaction: Calls,
) -> None:
    """The negative control: what the watch would report of the code as it was."""
    from charter.connectors.modern_treasury import ModernTreasurySettings, PaymentOrderLookup
    from charter.connectors.registry import obtain

    await pay_through(db, tenant, mt)
    readers = session_vault().scoped("read")
    async with db.tenant(tenant) as conn:
        credential = await obtain(readers, conn, tenant, "modern-treasury")
        settings = ModernTreasurySettings(
            organization_id=mt.organization_id,
            originating_account_id=mt.internal_accounts[0]["id"],
            base_url=mt.base_url,
        )
        assert await PaymentOrderLookup(settings, credential).find("nothing-here") is None
    assert no_request_inside_a_transaction.inside, "a request inside a transaction went unseen"
    no_request_inside_a_transaction.clear()


async def test_a_live_lease_is_waited_for_and_an_expired_one_taken_over(
    db: Database, tenant: str, mt: ModernTreasuryStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_leases, "WAIT_FOR_LEASE", timedelta(seconds=1))
    req = await paying_through_mt(db, tenant, mt)
    async with db.tenant(tenant) as conn:
        # Another run paying the same bill, its call in flight.
        claimed = await leases.claim(
            conn, tenant, subject(req), "another-key", "another-attempt", timedelta(seconds=60)
        )
    assert claimed is not None and claimed.live
    act = act_with(db)
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(act.act, req)
    assert caught.value.type == ErrorType.CONCURRENT and not caught.value.non_retryable
    assert mt.payment_orders == [] and mt.requests == []
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "UPDATE charter.write_leases SET expires_at = now() - interval '1 second' "
            "WHERE tenant_id = $1",
            tenant,
        )
    result = await ActivityEnvironment().run(act.act, req)
    assert result.status == "executed"
    assert len(mt.payment_orders) == 1
    lease = await lease_of(db, req)
    assert lease is not None and lease.state == "done"
    assert lease.taken_over_from == "another-attempt"
    assert lease.idempotency_key == result.idempotency_key


async def test_the_lease_is_renewed_while_the_provider_is_slow(
    db: Database, tenant: str, mt: ModernTreasuryStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_leases, "LEASE_TTL", timedelta(seconds=2))
    monkeypatch.setattr(write_leases, "RENEW_EVERY", 0.3)
    monkeypatch.setattr("activities.act.LEASE_TTL", timedelta(seconds=2))
    req = await paying_through_mt(db, tenant, mt)
    mt.faults.append(Fault("delay", seconds=5))
    seen: list[tuple[bool, datetime]] = []

    async def watch() -> None:
        while True:
            lease = await lease_of(db, req)
            if lease is not None and lease.state == "claimed":
                seen.append((lease.live, lease.expires_at))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    began = time.monotonic()
    try:
        result = await ActivityEnvironment().run(act_with(db).act, req)
    finally:
        watcher.cancel()
    assert time.monotonic() - began >= 5, "the provider was not slow: the test proves nothing"
    assert result.status == "executed" and len(mt.payment_orders) == 1
    # Live all along, though the call took more than twice the lease's unrenewed life.
    assert seen and all(live for live, _ in seen)
    assert len({at for _, at in seen}) > 3, "the lease was never renewed"


async def test_an_open_circuit_sends_the_payment_back_with_the_reason(
    db: Database, tenant: str, mt: ModernTreasuryStandIn
) -> None:
    req = await paying_through_mt(db, tenant, mt)
    async with db.tenant(tenant) as conn:
        observed = Observation(
            tenant_id=tenant, agent="payables", observed_at=datetime.now(UTC), source="test"
        )
        await audit_trail.append(
            conn,
            tenant,
            "observed",
            observed.model_dump(mode="json"),
            actor="agent:payables",
            workflow_id=req.run.workflow_id,
            run_id=req.run.run_id,
        )
    bulkheads = worker_bulkheads(
        ProviderLimits(wait=timedelta(seconds=0.5), failures_to_open=1, open_for=timedelta(hours=1))
    )
    async with bulkheads.call("modern-treasury"):
        pass  # the compartment exists; now one failure opens it
    bulkheads._compartment("modern-treasury").breaker.failed(time.monotonic())
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(act_with(db, bulkheads=bulkheads).act, req)
    assert caught.value.type == ErrorType.BACK_TO_HUMANS
    assert "circuit open" in caught.value.message
    (exception_id,) = caught.value.details
    async with db.tenant(tenant) as conn:
        opened = await runs.get_exception(conn, tenant, str(exception_id))
    assert opened is not None and opened["status"] == "open"
    assert "circuit open" in opened["context"]["at_execution"]["reason"]
    assert mt.payment_orders == []


async def test_reconcile_asks_the_provider_with_no_transaction_open(
    db: Database,
    tenant: str,
    mt: ModernTreasuryStandIn,
    monkeypatch: pytest.MonkeyPatch,
    no_request_inside_a_transaction: Calls,
) -> None:
    req = await paying_through_mt(db, tenant, mt)

    async def lost(*_: object) -> None:
        raise ConnectionResetError("worker lost the database before recording")

    monkeypatch.setattr("activities.act.record_provider_write", lost)
    with pytest.raises(ConnectionResetError):
        await ActivityEnvironment().run(act_with(db).act, req)
    assert len(mt.payment_orders) == 1 and await pending(db, tenant) != []
    no_request_inside_a_transaction.clear()
    (settled,) = await reconcile_tenant(db, tenant, session_vault().scoped("read"))
    assert settled.outcome == "recorded"
    assert settled.reference == mt.payment_orders[0]["id"]
    assert no_request_inside_a_transaction.sent and no_request_inside_a_transaction.inside == []
    assert await pending(db, tenant) == []
