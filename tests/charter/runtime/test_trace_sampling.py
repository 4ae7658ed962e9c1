"""Housekeeping's database statements start no trace; an operation's are spans of it."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from charter.runtime.trace_sampling import OPERATIONS_ONLY

STATEMENT = {"db.system": "postgresql", "db.statement": "SELECT 1"}


def _tracer() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=OPERATIONS_ONLY)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def test_a_statement_outside_every_operation_is_not_traced() -> None:
    exporter, provider = _tracer()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("RESET", kind=SpanKind.CLIENT, attributes=STATEMENT):
        pass
    assert exporter.get_finished_spans() == ()


def test_an_operations_statements_and_temporal_client_calls_are() -> None:
    exporter, provider = _tracer()
    tracer = provider.get_tracer("test")
    start = {"temporalWorkflowID": "charter/t/payables/x"}
    with (
        tracer.start_as_current_span(
            "StartWorkflow:AgentLoop", kind=SpanKind.CLIENT, attributes=start
        ),
        tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes=STATEMENT),
    ):
        pass
    with tracer.start_as_current_span(
        "POST", kind=SpanKind.CLIENT, attributes={"http.method": "POST"}
    ):
        pass
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["POST", "SELECT", "StartWorkflow:AgentLoop"]
