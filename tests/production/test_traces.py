"""The trace of one escalate -> approve -> act run: one tree from the start through the
workflow into every stage, and no amount, counterparty or secret in any attribute."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import aiohttp
import httpx
import httpx2
import requests
import urllib3
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.config.settings import Settings
from charter.reasoners.claude import ClaudeReasoner
from charter.runtime import telemetry
from charter.storage import Database
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput, Decision
from starter import start_run
from tests.support.running import until_stage
from tests.support.signing import signed
from tests.support.standins.messages_api import FakeMessagesApi, tool_reply
from tests.support.vault import session_vault
from worker import build_worker
from workflows import AgentLoop

#: INV-1043: Bluebird Design Studio (unverified), 2300.00: escalates, approved, paid.
FORBIDDEN = ("INV-1043", "Bluebird", "bluebird", "2300", "Brand refresh", "maya", "k3y")
API_KEY = "sk-ant-test-" + "k3y" * 10
BLUEBIRD = {
    "action": "schedule_payment",
    "amount": "2300.00",
    "currency": "USD",
    "counterparty": "Bluebird Design Studio",
    "reference": "INV-1043",
    "confidence": 0.93,
    "rationale": "Pay INV-1043.",
    "citations": ["allow-verified-vendor-bills"],
}


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
    client = await Client.connect(
        address, plugins=[CharterPlugin.from_settings(Settings(), tracer=tracer)]
    )
    queue = f"traces-{uuid.uuid4().hex[:8]}"
    # The real Anthropic SDK (httpx) against a local Messages API, so that the model call is an
    # outbound request in the trace.
    api = FakeMessagesApi().start()
    api.script(tenant, tool_reply([BLUEBIRD]))
    reasoner = ClaudeReasoner(
        api_key=SecretStr(API_KEY),
        model="claude-sonnet-4-6",
        max_tokens=2048,
        timeout=timedelta(seconds=10),
        base_url=api.url,
    )
    telemetry.instrument_clients(provider)
    try:
        async with build_worker(
            client, Deps(credentials=session_vault(), db=db, reasoner=reasoner), queue
        ):
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
    finally:
        telemetry.uninstrument_clients()
        api.stop()
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

    # Every statement and the model's request are spans of their own, under the stage that
    # made them; statements without their parameters, the URL without its query string.
    for name in stages:
        children = [
            s for s in spans if s.parent and s.parent.span_id == stages[name].context.span_id
        ]
        statements = [s for s in children if "db.statement" in (s.attributes or {})]
        assert statements, name
        texts = [str((s.attributes or {})["db.statement"]) for s in statements]
        assert any("$1" in text for text in texts), (name, texts)
        for statement in statements:
            attributes = dict(statement.attributes or {})
            assert attributes["db.system"] == "postgresql"
            assert "db.statement.parameters" not in attributes
    requests = [s for s in spans if "http.url" in (s.attributes or {})]
    assert requests
    for request in requests:
        assert request.attributes["http.url"] == f"{api.url}/v1/messages"  # type: ignore[index]
        assert _ancestors(request, by_id)[:2] == ["charter.reason", "RunActivity:reason"]

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


async def test_outbound_requests_are_spans_without_their_query_strings() -> None:
    """Every HTTP client the connectors, the model and Slack use: a span per request, whose URL
    keeps no query string (a QuickBooks query names the vendor there)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    api = FakeMessagesApi().start()
    url = f"{api.url}/v1/lookup?name=Bluebird+Design+Studio&amount=2300"
    telemetry.instrument_clients(provider)
    try:
        async with httpx.AsyncClient() as http:
            await http.get(url)
        async with httpx2.AsyncClient() as http2:
            await http2.get(url)
        async with aiohttp.ClientSession() as session, session.get(url):
            pass
        await asyncio.to_thread(requests.get, url, timeout=10)
        await asyncio.to_thread(urllib3.PoolManager().request, "GET", url)
    finally:
        telemetry.uninstrument_clients()
        api.stop()
    spans = exporter.get_finished_spans()
    scopes = {span.instrumentation_scope.name for span in spans if span.instrumentation_scope}
    assert {
        "opentelemetry.instrumentation.httpx",
        "charter.runtime.telemetry",
        "opentelemetry.instrumentation.aiohttp_client",
        "opentelemetry.instrumentation.requests",
        "opentelemetry.instrumentation.urllib3",
    } <= scopes, scopes
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes.get("http.url") == f"{api.url}/v1/lookup", (span.name, attributes)
        for word in FORBIDDEN:
            assert word not in span.name + repr(attributes), (word, span.name)
