"""Spend limits for tests: a tenant's law with limits added, autonomous runs gated at once,
and what they spent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import ActActivities
from charter.governance.constitution import parse_document
from charter.storage import Database, constitution_versions, runs
from schemas import ActInput, Constitution, Proposal, RunRef, Verdict
from tests.support.owner import as_owner

DAILY_CAP = {
    "id": "autonomous-daily",
    "title": "At most $5,000 a day without a human",
    "scope": "autonomous",
    "window": "P1D",
    "amount": "5000",
}


async def with_limits(db: Database, tenant: str, *limits: dict[str, Any]) -> Constitution:
    """The tenant's law plus `limits`, saved as a new version by the owner."""
    async with as_owner(db, tenant) as conn:
        latest = await constitution_versions.get(conn, tenant)
        raw = latest.document.model_dump(mode="json", exclude_none=True)
        raw["limits"] = list(limits)
        return await constitution_versions.save(
            conn, tenant, parse_document(raw), source="test", created_by="maya"
        )


async def add_vendor_invoices(db: Database, tenant: str, count: int, amount: Decimal) -> list[str]:
    """`count` verified vendors with one open invoice of `amount` each (no look-alikes)."""
    due = datetime.now(UTC).date() + timedelta(days=10)
    ids = [f"INV-C{n:03d}" for n in range(count)]
    async with db.tenant(tenant) as conn:
        await conn.executemany(
            "INSERT INTO charter.vendors (tenant_id, vendor_id, name, verified) VALUES "
            "($1, $2, $3, true)",
            [(tenant, f"cv{n:03d}", f"Vendor {n:03d}") for n in range(count)],
        )
        await conn.executemany(
            "INSERT INTO charter.invoices (tenant_id, invoice_id, vendor_id, amount, due_date, "
            "status, memo) VALUES ($1, $2, $3, $4, $5, 'open', '')",
            [(tenant, i, f"cv{n:03d}", amount, due) for n, i in enumerate(ids)],
        )
    return ids


async def gated(db: Database, tenant: str, law: Constitution, n: int, invoice: str) -> ActInput:
    """One run whose gate let a payment execute autonomously (recorded as the workflow would)."""
    run = RunRef(
        tenant_id=tenant,
        agent="payables",
        workflow_id=f"charter/{tenant}/payables/{uuid.uuid4().hex[:8]}",
        run_id=str(uuid.uuid4()),
    )
    proposal = Proposal(
        proposal_id="p1",
        action="schedule_payment",
        amount=Decimal("900.00"),
        counterparty=f"Vendor {int(invoice[-3:]):03d}",
        reference=invoice,
        confidence=0.95,
        rationale="Verified vendor, due soon.",
        citations=["allow-verified-vendor-bills"],
    )
    verdict = Verdict(
        proposal_id="p1",
        outcome="execute",
        constitution_version=law.version,
        constitution_hash=law.content_hash,
        evaluated=[],
        matched=[],
        confidence=0.95,
        explanation="gated when nothing had been spent",
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
    return ActInput(
        run=run, proposal=proposal, decision_deadline=datetime.now(UTC) + timedelta(days=1)
    )


async def outcome(act: ActActivities, req: ActInput) -> str:
    try:
        result = await ActivityEnvironment().run(act.act, req)
    except ApplicationError as exc:
        return exc.type or "error"
    except asyncio.CancelledError:
        return "cancelled"
    return result.status


async def executed_total(db: Database, tenant: str) -> Decimal:
    async with db.tenant(tenant) as conn:
        total = await conn.fetchval(
            "SELECT COALESCE(sum(amount), 0) FROM charter.payments WHERE tenant_id = $1 AND "
            "payment_id LIKE 'pay-%'",
            tenant,
        )
    return Decimal(total)
