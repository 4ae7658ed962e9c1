"""The trace of one escalate -> approve -> act run: one tree from the start through the
workflow into every stage, and no amount, counterparty or secret in any attribute."""

from __future__ import annotations

import asyncio
import uuid

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput, Decision
from starter import start_run
from tests.helpers import until_stage
from tests.support.signing import signed
from worker import build_worker
from workflows import AgentLoop

#: INV-1043: Bluebird Design Studio (unverified), 2300.00: escalates, approved, paid.
FORBIDDEN = ("INV-1043", "Bluebird", "bluebird", "2300", "Brand refresh", "maya")


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_span_tree_of_an_escalated_approved_run(
    env: WorkflowEnvironment, db: Database, tenant: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("charter-test")
    address = env.client.service_client.config.target_host
    client = await Client.connect(address, plugins=[CharterPlugin(tracer=tracer)])
    queue = f"traces-{uuid.uuid4().hex[:8]}"

    async with build_worker(client, Deps(db=db, reasoner=OfflineReasoner()), queue):
        run = AgentRunInput(
            tenant_id=tenant,
            agent="payables",
            trigger="invoice-received-INV-1043",
            focus=["INV-1043"],
        )
        handle = await start_run(client, run, task_queue=queue)
        state = await until_stage(handle, "awaiting_decision")
        await handle.execute_update(
            AgentLoop.decide,
            await signed(
                handle,
                Decision(
                    proposal_id="p1", approver="maya", outcome="approve", reason="known studio"
                ),
            ),
        )
        result = await asyncio.wait_for(handle.result(), 60)
    assert state.proposals[0].status == "awaiting_decision"
    assert result.proposals[0].status == "executed"

    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    stages = {span.name: span for span in spans if span.name.startswith("charter.")}
    assert set(stages) == {
        "charter.read",
        "charter.reason",
        "charter.gate",
        "charter.decision",
        "charter.act",
    }

    # One trace from the client's start through the workflow into every stage; the decision,
    # though it arrived by an update, is an activity of the run like the others.
    start = next(s for s in spans if s.name == "StartWorkflow:AgentLoop")
    for name in stages:
        span = stages[name]
        assert span.context.trace_id == start.context.trace_id, name
        activity = name_to_activity(name)
        assert _ancestors(span, by_id) == [
            f"RunActivity:{activity}",
            f"StartActivity:{activity}",
            "StartWorkflow:AgentLoop",
        ], name
    run_workflow = [s for s in spans if s.name == "RunWorkflow:AgentLoop"]
    assert run_workflow and all(
        _ancestors(s, by_id) == ["StartWorkflow:AgentLoop"] for s in run_workflow
    )
    for span in stages.values():
        attributes = dict(span.attributes or {})
        assert attributes["charter.tenant"] == tenant and attributes["charter.agent"] == "payables"
        assert attributes["temporal.workflow_id"] == handle.id
    assert stages["charter.gate"].attributes["charter.outcome"] == "escalate"  # type: ignore[index]
    assert stages["charter.gate"].attributes["charter.proposal_id"] == "p1"  # type: ignore[index]
    assert stages["charter.decision"].attributes["charter.outcome"] == "approve"  # type: ignore[index]
    assert stages["charter.act"].attributes["charter.outcome"] == "executed"  # type: ignore[index]

    # No business data and no secret anywhere in the trace.
    for span in spans:
        text = span.name + repr(dict(span.attributes or {})) + repr(span.events)
        for word in FORBIDDEN:
            assert word not in text, (word, span.name, text)


def name_to_activity(stage_span: str) -> str:
    return {
        "charter.read": "observe",
        "charter.reason": "reason",
        "charter.gate": "record_verdicts",
        "charter.decision": "record_decision",
        "charter.act": "act",
    }[stage_span]
