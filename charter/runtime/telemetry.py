"""Traces and metrics, configured the standard way.

Traces: the OpenTelemetry SDK with the OTLP exporter, both configured by the standard
`OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...). Without an
endpoint nothing is exported and the spans Charter's plugin makes cost next to nothing.

Metrics: the Temporal runtime's Prometheus endpoint (`CHARTER_METRICS_ADDRESS`, e.g.
`0.0.0.0:9464`), which serves the SDK's series and Charter's own (`charter.temporal.stages`
counts on the runtime's meter, and the open-exceptions gauge of
`charter.runtime.open_exceptions`), so one scrape target has both.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

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
    provider = TracerProvider(resource=Resource.create(default))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def metrics_runtime(address: str) -> Runtime:
    """The Temporal runtime serving Prometheus metrics on `address` (one per process and
    address: the runtime owns the listening socket)."""
    if address not in _runtimes:
        _runtimes[address] = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    # Humans decide in minutes to days; the default buckets stop at a minute.
                    histogram_bucket_overrides={"charter_time_to_decision": DECISION_BUCKETS},
                )
            )
        )
    return _runtimes[address]
