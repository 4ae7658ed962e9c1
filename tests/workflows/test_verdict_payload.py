"""A run's verdicts are recorded together, and its history does not carry the observation
once per proposal.

Sending the whole observation with every verdict made a run's history grow with
proposals x observation (bench/agent_loop.py measures it). Newer runs record every verdict
in one local activity: its input never reaches history (only its result, a marker with the
exception ids), and the activity gets the records once, for the exceptions it opens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities import Deps
from activities.exceptions import ExceptionActivities
from charter.reasoners import OfflineReasoner
from charter.storage import Database, runs
from schemas import (
    Decision,
    DecisionReceipt,
    GatedProposal,
    Observation,
    RecordVerdictsInput,
    RunRef,
    RunState,
)
from tests.support.running import audit_kinds, chain_ok, record_history, start, until_stage
from tests.support.signing import decide
from tests.support.vault import session_vault

#: The marker Temporal's core SDK records for a local activity's result.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def test_verdicts_are_recorded_together_without_the_records_in_history(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1041", "INV-1039", "INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    assert {p.proposal.reference: p.verdict.outcome for p in state.proposals if p.verdict} == {
        "INV-1041": "execute",
        "INV-1039": "deny",
        "INV-1043": "escalate",
    }
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "record_verdict" not in scheduled and "record_verdicts" not in scheduled
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    ]
    verdicts = [
        m
        for m in markers
        if json.loads(m.details["data"].payloads[0].data)["activity_type"] == "record_verdicts"
    ]
    assert len(verdicts) == 1  # one call for the three proposals
    # Only the exception ids come back: nothing of the observation is in the marker.
    assert sum(len(p.data) for p in verdicts[0].details["result"].payloads) < 2048

    # In the chain, in gating order, one verdict per proposal; the escalation's exception
    # holds what was observed about its invoice (the records reached the activity).
    kinds = await audit_kinds(db, tenant, handle.id)
    assert [k for k in kinds if k in ("gate_verdict", "exception_opened")] == [
        "gate_verdict",
        "gate_verdict",
        "gate_verdict",
        "exception_opened",
    ]
    await chain_ok(db, tenant)
    escalated = next(p for p in state.proposals if p.status == "awaiting_decision")
    assert escalated.exception_id is not None
    async with db.tenant(tenant) as conn:
        exc = await runs.get_exception(conn, tenant, escalated.exception_id)
    assert exc is not None
    assert exc["context"]["observed"]["invoice"]["invoice_id"] == "INV-1043"
    assert exc["context"]["observed"]["vendor"]["verified"] is False
    await decide(
        handle,
        Decision(proposal_id=escalated.proposal.proposal_id, approver="maya", outcome="approve"),
        result_type=DecisionReceipt,
    )
    result = await handle.result()
    assert sorted(p.status for p in result.proposals) == ["denied", "executed", "executed"]
    await record_history(handle, "verdicts_recorded_together")


async def test_recording_the_verdicts_again_writes_nothing_twice(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """A local activity runs again when the workflow task it ran in is lost after its commit:
    the second call answers with the same exception ids and adds nothing to the chain."""
    handle = await start(client, tenant, "payables", focus=["INV-1041", "INV-1043"])
    state: RunState = await until_stage(handle, "awaiting_decision")
    gating = ("gate_verdict", "exception_opened")
    before = [k for k in await audit_kinds(db, tenant, handle.id) if k in gating]
    assert before == ["gate_verdict", "gate_verdict", "exception_opened"]
    described = await handle.describe()
    again = RecordVerdictsInput(
        run=RunRef(
            tenant_id=tenant, agent="payables", workflow_id=handle.id, run_id=described.run_id
        ),
        gated=[
            GatedProposal(proposal=p.proposal, verdict=p.verdict, expires_at=p.expires_at)
            for p in state.proposals
            if p.verdict is not None
        ],
        observation=Observation(
            tenant_id=tenant, agent="payables", observed_at=datetime.now(UTC), source="demo"
        ),
    )
    activities = ExceptionActivities(
        Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner())
    )
    recorded = await ActivityEnvironment().run(activities.record_verdicts, again)
    assert [r.exception_id for r in recorded.records] == [p.exception_id for p in state.proposals]
    assert recorded.records[1].exception_id is not None  # INV-1043 escalated
    assert [k for k in await audit_kinds(db, tenant, handle.id) if k in gating] == before
    await chain_ok(db, tenant)
    await handle.terminate("test over")
