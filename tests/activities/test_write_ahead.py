"""Write-ahead: the intent is committed before the connector acts, the result after.

Runs the real `act` activity (ActivityEnvironment) against the real database, with the
connector or the audit write made to fail at the worst moment.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities import Deps
from activities.act import ActActivities
from charter.audit.chain import verify_chain
from charter.connectors.demo import DemoBooksWriter
from charter.reasoners import OfflineReasoner
from charter.services.payment_keys import action_key
from charter.storage import Database, audit_trail, runs
from schemas import ActInput, Proposal, RunRef, Verdict
from tests.support.vault import session_vault

pytestmark = pytest.mark.db


async def authorised_payment(db: Database, tenant: str) -> ActInput:
    run = RunRef(
        tenant_id=tenant,
        agent="payables",
        workflow_id=f"charter/{tenant}/payables/{uuid.uuid4().hex[:8]}",
        run_id=str(uuid.uuid4()),
    )
    proposal = Proposal(
        proposal_id="p1",
        action="schedule_payment",
        amount=Decimal("3412.18"),
        counterparty="Amazon Web Services",
        reference="INV-1041",
        confidence=0.95,
        rationale="Verified vendor, due soon.",
    )
    verdict = Verdict(
        proposal_id="p1",
        outcome="execute",
        constitution_version=1,
        constitution_hash="test",
        evaluated=[],
        matched=[],
        confidence=0.95,
        explanation="test",
    )
    async with db.tenant(tenant) as conn:
        await runs.save_proposal(
            conn,
            tenant_id=tenant,
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            agent=run.agent,
            proposal=proposal,
            verdict=verdict,
        )
    return ActInput(run=run, proposal=proposal)


async def payments_for(db: Database, tenant: str) -> int:
    async with db.tenant(tenant) as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM charter.payments WHERE tenant_id = $1 AND invoice_id = 'INV-1041'",
                tenant,
            )
        )


async def test_crash_between_intent_and_result_leaves_the_action_pending(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = await authorised_payment(db, tenant)
    activity = ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))

    async def crash(self: DemoBooksWriter, *_: object) -> str:
        raise ConnectionResetError("worker lost the connector mid-call")

    monkeypatch.setattr(DemoBooksWriter, "execute", crash)
    with pytest.raises(ConnectionResetError):
        await ActivityEnvironment().run(activity.act, req)
    async with db.tenant(tenant) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant)]
    report = verify_chain(tenant, entries)
    assert report.ok, report
    key = await action_key(db, req.run, req.proposal)
    assert report.pending_actions == [key]
    assert entries[-1].kind == "action_intent"
    assert await payments_for(db, tenant) == 0

    # The retry executes once and closes the intent.
    monkeypatch.undo()
    result = await ActivityEnvironment().run(activity.act, req)
    assert result.status == "executed"
    async with db.tenant(tenant) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant)]
    report = verify_chain(tenant, entries)
    assert report.ok and report.pending_actions == []
    assert [e.kind for e in entries[-3:]] == ["action_intent", "action_intent", "action_result"]
    assert await payments_for(db, tenant) == 1


async def test_failed_intent_write_means_no_action(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = await authorised_payment(db, tenant)
    activity = ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))
    real_append = audit_trail.append
    called: list[str] = []

    async def failing_append(
        conn: asyncpg.Connection, tenant_id: str, kind: str, *a: object, **kw: object
    ):  # type: ignore[no-untyped-def]
        if kind == "action_intent":
            raise asyncpg.SerializationError("audit write lost")
        return await real_append(conn, tenant_id, kind, *a, **kw)  # type: ignore[arg-type]

    async def spy(self: DemoBooksWriter, *_: object) -> str:
        called.append("execute")
        return "never"

    monkeypatch.setattr(audit_trail, "append", failing_append)
    monkeypatch.setattr(DemoBooksWriter, "execute", spy)
    # Not an ApplicationError marked non-retryable: Temporal retries the activity.
    with pytest.raises(asyncpg.SerializationError):
        await ActivityEnvironment().run(activity.act, req)
    assert called == []
    assert await payments_for(db, tenant) == 0
    async with db.tenant(tenant) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant)]
        assert await conn.fetchval("SELECT count(*) FROM charter.actions") == 0
    assert not any(e.kind.startswith("action_") for e in entries)
