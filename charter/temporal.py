"""One plugin shared by the worker, the starters and the tests.

It bundles what every Temporal client and worker of Charter must agree on: the pydantic
data converter and the workflow sandbox's pass-through modules. Later layers (payload
codec, tracing interceptors) plug in here, so nobody can connect without them.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.plugin import SimplePlugin
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from charter.config import Settings

#: Pure modules the sandbox need not re-import per run. `cel` is a native extension.
PASSTHROUGH = ("cel", "pydantic", "pydantic_core", "schemas", "charter", "yaml")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


class CharterPlugin(SimplePlugin):
    def __init__(self) -> None:
        super().__init__(
            "charter",
            data_converter=pydantic_data_converter,
            workflow_runner=workflow_runner(),
        )


async def connect(settings: Settings, address: str | None = None) -> Client:
    target = address or settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    return await Client.connect(
        target, namespace=settings.temporal_namespace, plugins=[CharterPlugin()]
    )
