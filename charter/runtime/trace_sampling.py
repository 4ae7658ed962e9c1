"""Which traces are kept: an operation's, not housekeeping's.

A database statement is traced as a span of the operation that made it: a stage of a run, a
decision, a CLI command. One made outside every operation (the pool resetting a connection
it takes back, the open-exceptions gauge recounting) would otherwise start a trace of its
own, one span long, and bury the runs' traces under them. Every other root is kept (a
Temporal client call, an HTTP request), and every other span follows its parent.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

#: The attribute every database statement's span carries from its start (the asyncpg
#: instrumentation sets it when the span is created, so a sampler sees it).
_DATABASE = "db.system"


class _OperationsOnly(Sampler):
    """For spans with no parent: everything but a bare database statement."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT and attributes and _DATABASE in attributes:
            parent = get_current_span(parent_context).get_span_context()
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        return ALWAYS_ON.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "OperationsOnly"


#: Roots: operations only; every other span as its parent was sampled.
OPERATIONS_ONLY: Sampler = ParentBased(root=_OperationsOnly())
