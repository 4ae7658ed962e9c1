"""Traces and metrics, configured the standard way.

Traces: the OpenTelemetry SDK with the OTLP exporter, both configured by the standard
`OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...). Without an
endpoint nothing is exported and the spans Charter's plugin makes cost next to nothing.

Database statements and outbound HTTP requests (the model, the connectors, Slack) get spans
of their own once tracing is configured (`instrument_clients`): statements without their
parameters, URLs without their query strings.

Metrics: the Temporal runtime's Prometheus endpoint (`CHARTER_METRICS_ADDRESS`, e.g.
`0.0.0.0:9464`), which serves the SDK's series and Charter's own (`charter.temporal.stages`
counts on the runtime's meter, and the open-exceptions gauge of
`charter.runtime.open_exceptions`), so one scrape target has both.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled, unwrap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from charter.runtime.trace_sampling import OPERATIONS_ONLY

#: Buckets of `charter_time_to_decision`, in seconds: a minute to the longest wait (30 days).
DECISION_BUCKETS = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    86400.0,
    3 * 86400.0,
    7 * 86400.0,
    30 * 86400.0,
)

_runtimes: dict[str, Runtime] = {}

#: Where the HTTP instrumentations put the request's URL (older and current conventions).
_URL_ATTRIBUTES = ("http.url", "url.full")


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Export spans over OTLP when the environment names an endpoint; return the provider
    (call `shutdown()` on exit to flush) or None."""
    if not tracing_configured():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    default = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(default), sampler=OPERATIONS_ONLY)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    instrument_clients(provider)
    return provider


def without_query(url: str) -> str:
    """The URL a span may carry: scheme, host and path. Query strings carry business data
    (a QuickBooks query names the vendor, a Modern Treasury lookup the counterparty), and
    credentials in the authority are dropped with them."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _scrub_url(span: Span, url: str) -> None:
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, without_query(url))


def _httpx_request(span: Span, request: Any) -> None:
    _scrub_url(span, str(request.url))


async def _httpx_request_async(span: Span, request: Any) -> None:
    _scrub_url(span, str(request.url))


def _requests_request(span: Span, request: Any) -> None:
    _scrub_url(span, str(request.url))


class Httpx2Instrumentor(BaseInstrumentor):  # type: ignore[misc]
    """httpx2, the Anthropic SDK's client, has no OpenTelemetry instrumentation of its own:
    a client span per request around its transport, with the attributes the httpx
    instrumentation gives (method, URL without its query string, status code)."""

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ("httpx2",)

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, tracer_provider=kwargs.get("tracer_provider"))

        async def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            request = args[0] if args else kwargs["request"]
            if not is_http_instrumentation_enabled():
                return await wrapped(*args, **kwargs)
            with tracer.start_as_current_span(
                request.method,
                kind=SpanKind.CLIENT,
                attributes={
                    "http.method": request.method,
                    "http.url": without_query(str(request.url)),
                },
            ) as span:
                response = await wrapped(*args, **kwargs)
                span.set_attribute("http.status_code", response.status_code)
                if response.status_code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return response

        wrapt.wrap_function_wrapper("httpx2", "AsyncHTTPTransport.handle_async_request", traced)

    def _uninstrument(self, **kwargs: Any) -> None:
        import httpx2

        unwrap(httpx2.AsyncHTTPTransport, "handle_async_request")


def _instrumentors() -> list[tuple[BaseInstrumentor, dict[str, Any]]]:
    return [
        # Statements only, never their parameters (amounts, names): every statement of
        # Charter's is parameterised.
        (AsyncPGInstrumentor(capture_parameters=False), {}),  # type: ignore[no-untyped-call]
        # Anthropic.
        (Httpx2Instrumentor(), {}),
        # Modern Treasury.
        (
            HTTPXClientInstrumentor(),
            {"request_hook": _httpx_request, "async_request_hook": _httpx_request_async},
        ),
        # Slack's async client.
        (AioHttpClientInstrumentor(), {"url_filter": lambda url: without_query(str(url))}),
        # QuickBooks and its OAuth client.
        (RequestsInstrumentor(), {"request_hook": _requests_request}),
        # Plaid.
        (URLLib3Instrumentor(), {"url_filter": without_query}),
    ]


def instrument_clients(tracer_provider: TracerProvider | None = None) -> None:
    """A span for every database statement and outbound HTTP request, a child of the
    activity's stage span it runs under. `tracer_provider` defaults to the global one."""
    for instrumentor, options in _instrumentors():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider, **options)


def uninstrument_clients() -> None:
    for instrumentor, _ in _instrumentors():
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


#: The `service_name` label of every series, unless `OTEL_SERVICE_NAME` names another.
METRICS_SERVICE_NAME = "charter-worker"


def metrics_service_name() -> str:
    return os.environ.get("OTEL_SERVICE_NAME") or METRICS_SERVICE_NAME


def metrics_runtime(address: str) -> Runtime:
    """The Temporal runtime serving Prometheus metrics on `address` (one per process and
    address: the runtime owns the listening socket).

    Counters end in `_total`, as Prometheus names them; every series carries the
    `service_name` of Charter's worker (not the SDK core's default `temporal-core-sdk`)."""
    if address not in _runtimes:
        _runtimes[address] = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    counters_total_suffix=True,
                    # Humans decide in minutes to days; the default buckets stop at a minute.
                    histogram_bucket_overrides={"charter_time_to_decision": DECISION_BUCKETS},
                ),
                attach_service_name=False,
                global_tags={"service_name": metrics_service_name()},
            )
        )
    return _runtimes[address]
