"""record_decision and act do not trust their caller either (review r1).

The workflow refuses a decision on a rejected or expired exception and a self-approval, but
the database is the last line: called directly or retried, the activities must not record
an approval the workflow would refuse, nor act on one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities import DecisionActivities, Deps
from charter.crypto import statements
from charter.governance.constitution import parse_document
from charter.reasoners import OfflineReasoner
from charter.storage import Database, constitution_versions, runs
from schemas import (
    ActInput,
    AmendmentRequest,
    Decision,
    DecisionReceipt,
    ProposalEdit,
    ProposalState,
    RecordDecisionInput,
    RunRef,
    RunState,
)
from tests.support.decided_runs import act_activities, actions, run_ref, update_error
from tests.support.owner import as_owner
from tests.support.polling import eventually
from tests.support.running import start, until_stage
from tests.support.signing import decide, sign_for
from tests.support.vault import session_vault


def _decisions(db: Database) -> DecisionActivities:
    return DecisionActivities(Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()))


def _record(ref: RunRef, ps: ProposalState, decision: Decision) -> RecordDecisionInput:
    assert ps.verdict is not None and ps.exception_id is not None
    return RecordDecisionInput(
        run=ref,
        proposal=ps.proposal,
        verdict=ps.verdict,
        exception_id=ps.exception_id,
        decision=sign_for(ref, ps, decision),
    )


async def _escalated(
    client: Client, tenant: str, **kw: Any
) -> tuple[WorkflowHandle[Any, Any], RunRef, ProposalState]:
    handle = await start(client, tenant, "payables", focus=["INV-1043"], **kw)
    state: RunState = await until_stage(handle, "awaiting_decision")
    return handle, await run_ref(handle, tenant, "payables"), state.proposals[0]


async def _slip_in_approval(db: Database, ref: RunRef, ps: ProposalState, approver: str) -> None:
    """An approval row written past the workflow's and record_decision's rule checks, as a
    bug could: with the member's own valid signed statement, so that act's other checks
    (not the proof) are what must refuse it."""
    tenant, workflow_id = ref.tenant_id, ref.workflow_id
    decision = sign_for(
        ref, ps, Decision(proposal_id="p1", approver=approver, outcome="approve", reason="forged")
    )
    async with db.tenant(tenant) as conn:
        await runs.record_decision(
            conn,
            tenant_id=tenant,
            workflow_id=workflow_id,
            proposal_id=ps.proposal.proposal_id,
            approver=approver,
            outcome="approve",
            reason="forged",
            digest=runs.proposal_digest(ps.proposal),
            amendment_version=None,
            statement=decision.statement,
            signature=decision.signature,
            nonce=statements.parse(decision.statement).nonce if decision.statement else None,
        )


async def _decision_rows(db: Database, tenant: str, workflow_id: str) -> list[tuple[str, str]]:
    async with db.tenant(tenant) as conn:
        rows = await conn.fetch(
            "SELECT approver, outcome FROM charter.decisions WHERE tenant_id = $1 AND "
            "workflow_id = $2 ORDER BY approver",
            tenant,
            workflow_id,
        )
    return [(r["approver"], r["outcome"]) for r in rows]


async def test_approval_after_a_reject_is_refused_and_never_acts(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle, ref, ps = await _escalated(client, tenant)
    await decide(handle, Decision(proposal_id="p1", approver="maya", outcome="reject", reason="no"))
    result = await handle.result()
    assert result.proposals[0].status == "rejected"

    # Called directly, record_decision must not add an approval to a rejected exception.
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            _decisions(db).record_decision,
            _record(ref, ps, Decision(proposal_id="p1", approver="sam", outcome="approve")),
        )
    assert refused.value.type == "NotAwaitingDecision" and refused.value.non_retryable
    assert await _decision_rows(db, tenant, handle.id) == [("maya", "reject")]

    # Even if an approval row got in beside the reject, act refuses: the exception is rejected.
    await _slip_in_approval(db, ref, ps, "sam")
    with pytest.raises(ApplicationError) as act_refused:
        await ActivityEnvironment().run(
            act_activities(db).act, ActInput(run=ref, proposal=ps.proposal)
        )
    assert act_refused.value.type == "NotAuthorised"
    assert "rejected" in act_refused.value.message
    assert await actions(db, tenant) == []


async def test_decision_on_an_exception_past_its_expiry_is_refused(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle, ref, ps = await _escalated(client, tenant)
    # The deadline passed but the run has not recorded the expiry yet (a decision racing it).
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "UPDATE charter.exceptions SET expires_at = $3 WHERE tenant_id = $1 AND "
            "exception_id = $2",
            tenant,
            ps.exception_id,
            datetime.now(UTC) - timedelta(seconds=1),
        )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            _decisions(db).record_decision,
            _record(ref, ps, Decision(proposal_id="p1", approver="maya", outcome="approve")),
        )
    assert refused.value.type == "NotAwaitingDecision" and "expired" in refused.value.message
    assert await _decision_rows(db, tenant, handle.id) == []
    await handle.terminate("test over")


async def test_retried_record_decision_returns_the_recorded_decision(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """An activity retried after its transaction committed must not refuse its own decision."""
    handle, ref, ps = await _escalated(client, tenant)
    req = _record(ref, ps, Decision(proposal_id="p1", approver="maya", outcome="approve"))
    first: DecisionReceipt = await ActivityEnvironment().run(_decisions(db).record_decision, req)
    again: DecisionReceipt = await ActivityEnvironment().run(_decisions(db).record_decision, req)
    assert (again.status, again.approvals, again.outcome) == (first.status, 1, "approve")
    assert await _decision_rows(db, tenant, handle.id) == [("maya", "approve")]
    async with db.tenant(tenant) as conn:
        decisions = await conn.fetchval(
            "SELECT count(*) FROM charter.audit_entries WHERE tenant_id = $1 AND "
            "workflow_id = $2 AND kind = 'decision'",
            tenant,
            handle.id,
        )
    assert decisions == 1
    # A different decision by the same approver is still a duplicate.
    with pytest.raises(ApplicationError) as dup:
        await ActivityEnvironment().run(
            _decisions(db).record_decision,
            _record(ref, ps, Decision(proposal_id="p1", approver="maya", outcome="reject")),
        )
    assert dup.value.type == "DuplicateApproval"
    await handle.terminate("test over")


@pytest.mark.parametrize("requested_by", ["Sam", " sam", "SAM "])
async def test_requester_cannot_approve_by_spelling_their_id_differently(
    client: Client, worker: Worker, db: Database, tenant: str, requested_by: str
) -> None:
    handle, _, _ = await _escalated(client, tenant, requested_by=requested_by)
    refused = await update_error(
        handle, Decision(proposal_id="p1", approver="sam", outcome="approve")
    )
    assert refused.type == "SelfApproval"
    assert await actions(db, tenant) == []
    await handle.terminate("test over")


async def test_record_decision_refuses_self_approval_from_the_database(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle, ref, ps = await _escalated(client, tenant, requested_by="sam")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            _decisions(db).record_decision,
            _record(ref, ps, Decision(proposal_id="p1", approver="sam", outcome="approve")),
        )
    assert refused.value.type == "SelfApproval" and refused.value.non_retryable
    assert await _decision_rows(db, tenant, handle.id) == []

    # Act refuses an approval by the requester even if one got into the table.
    await _slip_in_approval(db, ref, ps, "sam")
    async with db.tenant(tenant) as conn:
        await runs.close_exception(conn, tenant, ps.exception_id or "", "approved")
    with pytest.raises(ApplicationError) as act_refused:
        await ActivityEnvironment().run(
            act_activities(db).act, ActInput(run=ref, proposal=ps.proposal)
        )
    assert act_refused.value.type == "NotAuthorised" and "requested" in act_refused.value.message
    assert await actions(db, tenant) == []
    await handle.terminate("test over")


async def test_two_concurrent_decisions_on_one_exception_are_serialised(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """An approval and a reject at once: one wins, the other sees it; never both recorded."""
    handle, ref, ps = await _escalated(client, tenant)
    activities = _decisions(db)

    async def decide(approver: str, outcome: str) -> DecisionReceipt | ApplicationError:
        decision = Decision(proposal_id="p1", approver=approver, outcome=outcome)  # type: ignore[arg-type]
        try:
            receipt: DecisionReceipt = await ActivityEnvironment().run(
                activities.record_decision, _record(ref, ps, decision)
            )
            return receipt
        except ApplicationError as exc:
            return exc

    # Hold the exception's row so both decisions are in flight before either can finish.
    async with db.tenant(tenant) as held:
        await held.execute(
            "SELECT 1 FROM charter.exceptions WHERE tenant_id = $1 AND exception_id = $2 "
            "FOR UPDATE",
            tenant,
            ps.exception_id,
        )
        tasks = [
            asyncio.ensure_future(decide("maya", "approve")),
            asyncio.ensure_future(decide("sam", "reject")),
        ]

        async def both_waiting() -> bool:
            async with db.tenant(tenant) as conn:
                waiting = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return bool(waiting >= 2)

        await eventually(both_waiting)
    results = await asyncio.gather(*tasks)
    won = [r for r in results if isinstance(r, DecisionReceipt)]
    lost = [r for r in results if isinstance(r, ApplicationError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].type == "NotAwaitingDecision"
    rows = await _decision_rows(db, tenant, handle.id)
    assert rows == [(won[0].approver, won[0].outcome)]
    async with db.tenant(tenant) as conn:
        row = await runs.get_exception(conn, tenant, ps.exception_id or "")
    assert row is not None and row["status"] == won[0].status
    await handle.terminate("test over")


async def test_amendment_racing_a_new_version_keeps_that_version(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """An amendment is the latest version plus one rule. Read before the version lock, it
    was the version it *read* plus one rule: an owner's version saved meanwhile (a new deny
    rule, say) was silently reverted."""
    handle, ref, ps = await _escalated(client, tenant)
    decision = Decision(
        proposal_id="p1",
        approver="maya",
        outcome="approve",
        reason="known studio",
        amendment=AmendmentRequest(),
    )
    async with as_owner(db, tenant) as held:
        await held.execute("SELECT pg_advisory_xact_lock(hashtext('constitution:' || $1))", tenant)
        task = asyncio.ensure_future(
            ActivityEnvironment().run(_decisions(db).record_decision, _record(ref, ps, decision))
        )

        async def waiting() -> bool:
            async with db.tenant(tenant) as conn:
                n = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
            return bool(n)

        await eventually(waiting)
        # Meanwhile the owner adopts a version with a new deny rule.
        latest = await constitution_versions.get(held, tenant)
        raw = latest.document.model_dump(mode="json", exclude_none=True)
        raw["rules"].append(
            {
                "id": "deny-owner-new-rule",
                "title": "Owner's new hard limit",
                "applies_to": ["schedule_payment"],
                "when": "amount > 900000.0",
                "effect": "deny",
            }
        )
        owners = await constitution_versions.save(
            held, tenant, parse_document(raw), source="test", created_by="maya"
        )
    receipt: DecisionReceipt = await task
    assert receipt.amendment_version == owners.version + 1
    async with db.tenant(tenant) as conn:
        amended = await constitution_versions.get(conn, tenant)
    ids = [r.id for r in amended.document.rules]
    assert amended.version == receipt.amendment_version
    assert "deny-owner-new-rule" in ids and ids[-1] == f"amend-{ps.exception_id}"
    await handle.terminate("test over")


async def test_record_decision_asks_the_rule_book_with_what_the_database_says(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """The rules the workflow applies hold from the database too: no decision at all by the
    requester, and no edit once the current parameters have an approval."""
    handle, ref, ps = await _escalated(client, tenant, requested_by="Sam")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            _decisions(db).record_decision,
            _record(ref, ps, Decision(proposal_id="p1", approver="sam", outcome="reject")),
        )
    assert refused.value.type == "SelfApproval" and refused.value.non_retryable

    # An approval the workflow has not heard of yet (a race): an edit must come first.
    await _slip_in_approval(db, ref, ps, "ola")
    assert ps.verdict is not None
    edit = ProposalEdit(amount=Decimal("10.00"))
    edited = _record(
        ref, ps, Decision(proposal_id="p1", approver="maya", outcome="approve", edit=edit)
    ).model_copy(
        update={
            "approved": ps.proposal.model_copy(update={"amount": edit.amount}),
            "approved_verdict": ps.verdict,
        }
    )
    with pytest.raises(ApplicationError) as late:
        await ActivityEnvironment().run(_decisions(db).record_decision, edited)
    assert late.value.type == "EditAfterApproval" and late.value.non_retryable
    assert await _decision_rows(db, tenant, handle.id) == [("ola", "approve")]
    await handle.terminate("test over")
