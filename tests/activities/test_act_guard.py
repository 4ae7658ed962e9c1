"""The act activity does not trust its caller: called directly, it must not move money."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities import ActActivities, Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from schemas import ActInput, Proposal, RunRef, RunState
from tests.support.running import start, until_stage
from tests.support.signing import decide
from tests.support.vault import session_vault


def _act(db: Database) -> ActActivities:
    return ActActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))


async def _books(db: Database, tenant: str) -> tuple[Any, ...]:
    async with db.tenant(tenant) as conn:
        payments = await conn.fetchval(
            "SELECT count(*) FROM charter.payments WHERE tenant_id = $1", tenant
        )
        actions = await conn.fetchval(
            "SELECT count(*) FROM charter.actions WHERE tenant_id = $1", tenant
        )
    return payments, actions


async def test_act_without_any_verdict_refuses(db: Database, tenant: str) -> None:
    forged = Proposal(
        proposal_id="p1",
        action="schedule_payment",
        amount=Decimal("900.00"),
        counterparty="Cloudflare",
        reference="INV-1045",
        confidence=1.0,
        rationale="trust me",
    )
    ref = RunRef(
        tenant_id=tenant, agent="payables", workflow_id=f"forged-{uuid.uuid4()}", run_id="x"
    )
    before = await _books(db, tenant)
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(_act(db).act, ActInput(run=ref, proposal=forged))
    assert exc.value.type == "NotAuthorised" and exc.value.non_retryable
    assert "no gate verdict" in exc.value.message
    assert await _books(db, tenant) == before


async def test_act_on_an_escalated_but_undecided_proposal_refuses(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1043"])
    state: RunState = await until_stage(handle, "awaiting_decision")
    desc = await handle.describe()
    ref = RunRef(
        tenant_id=tenant, agent="payables", workflow_id=handle.id, run_id=desc.run_id or ""
    )
    proposal = state.proposals[0].proposal
    before = await _books(db, tenant)
    act = _act(db)
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(act.act, ActInput(run=ref, proposal=proposal))
    assert exc.value.type == "NotAuthorised" and "no recorded approval" in exc.value.message

    # Approved, but the caller swaps in a bigger amount: the approval is bound to the content.
    await decide(handle, {"proposal_id": "p1", "approver": "maya", "outcome": "approve"})
    await handle.result()
    inflated = proposal.model_copy(update={"amount": Decimal("23000.00")})
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(act.act, ActInput(run=ref, proposal=inflated))
    assert exc.value.type == "NotAuthorised" and "differs" in exc.value.message

    # The approved proposal itself was executed once; calling act again does not act twice.
    after = await _books(db, tenant)
    assert after == (before[0] + 1, before[1] + 1)
    again = await ActivityEnvironment().run(act.act, ActInput(run=ref, proposal=proposal))
    assert again.status == "already_executed"
    assert await _books(db, tenant) == after


async def test_act_on_a_denied_proposal_refuses(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1039"])
    result = await handle.result()
    ps = result.proposals[0]
    assert ps.status == "denied"
    desc = await handle.describe()
    ref = RunRef(
        tenant_id=tenant, agent="payables", workflow_id=handle.id, run_id=desc.run_id or ""
    )
    before = await _books(db, tenant)
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(_act(db).act, ActInput(run=ref, proposal=ps.proposal))
    assert exc.value.type == "NotAuthorised" and "denied" in exc.value.message
    assert await _books(db, tenant) == before
