"""One plugin shared by the worker, the starters and the tests.

It bundles what every Temporal client and worker of Charter must agree on: the pydantic
data converter, the payload codec that encrypts every payload (failure messages included,
through the encoded-attributes failure converter) and the workflow sandbox's pass-through
modules, and the tracing interceptors; so nobody can connect without them.
"""

from __future__ import annotations

import dataclasses

from opentelemetry import trace
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.plugin import SimplePlugin
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from charter.config.settings import Settings
from charter.crypto.codec import EncryptionCodec, PayloadKeyring, default_payload_keyring
from charter.temporal.heartbeats import Heartbeats
from charter.temporal.stages import StageInterceptor

#: Pure modules the sandbox need not re-import per run. `cel` is a native extension.
PASSTHROUGH = ("cel", "pydantic", "pydantic_core", "schemas", "charter", "yaml")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def data_converter(keyring: PayloadKeyring) -> DataConverter:
    """The pydantic converter, with every payload encrypted and failures encoded."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


class CharterPlugin(SimplePlugin):
    """`payload_keys` encrypt every payload; `CharterPlugin.from_settings(settings)` takes the
    configured ones (`default_payload_keyring`: `CHARTER_PAYLOAD_KEYS`, else the keyring file
    under the state directory, generated on first use).

    Tracing: Temporal's `TracingInterceptor` propagates the trace context from the client
    through the workflow to its activities, and `StageInterceptor` adds a span per stage.
    `tracer` defaults to the global tracer provider's (`charter.runtime.telemetry` sets it up
    from the `OTEL_*` variables; without them spans go nowhere)."""

    def __init__(self, payload_keys: PayloadKeyring, tracer: trace.Tracer | None = None) -> None:
        self.payload_keys = payload_keys
        super().__init__(
            "charter",
            data_converter=data_converter(self.payload_keys),
            workflow_runner=workflow_runner(),
            # Workers beat for every activity; the workflow relies on it (heartbeat timeouts).
            interceptors=[TracingInterceptor(tracer), StageInterceptor(tracer), Heartbeats()],
        )

    @classmethod
    def from_settings(cls, settings: Settings, tracer: trace.Tracer | None = None) -> CharterPlugin:
        """The plugin with the configured payload keys."""
        return cls(default_payload_keyring(settings), tracer)
