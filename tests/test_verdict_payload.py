"""record_verdict carries the observation's records only for escalations.

Sending the whole observation with every verdict made a run's history grow with
proposals x observation (bench/agent_loop.py measures it); an exception needs the records
for its context, an executed or denied verdict does not.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from charter.storage import Database, runs
from schemas import Decision, DecisionReceipt, RecordVerdictInput
from tests.helpers import record_history, start, until_stage
from tests.support.signing import decide


async def _verdict_inputs(client: Client, handle) -> list[RecordVerdictInput]:  # type: ignore[no-untyped-def]
    history = await handle.fetch_history()
    found: list[RecordVerdictInput] = []
    for event in history.events:
        if not event.HasField("activity_task_scheduled_event_attributes"):
            continue
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name == "record_verdict":
            (value,) = await client.data_converter.decode(
                attrs.input.payloads, [RecordVerdictInput]
            )
            found.append(value)
    return found


async def test_only_escalations_carry_the_records(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    handle = await start(client, tenant, "payables", focus=["INV-1041", "INV-1039", "INV-1043"])
    state = await until_stage(handle, "awaiting_decision")
    inputs = {i.proposal.reference: i for i in await _verdict_inputs(client, handle)}
    assert {r: i.verdict.outcome for r, i in inputs.items()} == {
        "INV-1041": "execute",
        "INV-1039": "deny",
        "INV-1043": "escalate",
    }
    for reference in ("INV-1041", "INV-1039"):
        light = inputs[reference].observation
        assert (light.invoices, light.vendors, light.bank_accounts) == ([], [], [])
    full = inputs["INV-1043"].observation
    assert {i.invoice_id for i in full.invoices} == {"INV-1041", "INV-1039", "INV-1043"}
    # The exception's context still holds what was observed about the escalated invoice.
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
    await record_history(handle, "verdict_without_records")
