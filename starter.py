"""Start an agent run from your own service, using only Charter's public contract.

The contract: workflow type `AgentLoop`, task queue `charter`, input `AgentRunInput`,
result `AgentRunResult`, a deterministic workflow id (`workflow_id_for`), the pydantic data
converter (through `CharterPlugin`). A duplicate start of the same trigger is rejected.

    python starter.py acme payables invoice-received-INV-1041 --focus INV-1041

Temporal is reached as in every Temporal sample: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS_*` or a profile of the Temporal config file
(`temporalio.envconfig`); `--address` / `--namespace` override them. The payload keys are the
workers' (`CHARTER_PAYLOAD_KEYS` or `CHARTER_PAYLOAD_KEYS_FILE`): without them the starter
refuses in one line (exit code 2) rather than encrypt with a key no worker holds.

Only the contract is imported: `schemas` and `CharterPlugin` — never the workflow code.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from charter.config.settings import Settings
from charter.runtime.failures import refuse_in_one_line
from charter.runtime.process import exit_now
from charter.temporal.plugin import CharterPlugin
from schemas import (
    KNOWN_AGENTS,
    TASK_QUEUE,
    WORKFLOW_TYPE,
    AgentRunInput,
    AgentRunResult,
    legacy_workflow_id_for,
    workflow_id_for,
)


async def start_run(
    client: Client, run: AgentRunInput, task_queue: str = TASK_QUEUE
) -> WorkflowHandle[Any, AgentRunResult]:
    """Start `AgentLoop` for one trigger. Raises WorkflowAlreadyStartedError on a duplicate,
    ValueError for an agent no connector serves (the run could never read anything)."""
    if run.agent not in KNOWN_AGENTS:
        raise ValueError(f"unknown agent {run.agent!r}; known: {', '.join(sorted(KNOWN_AGENTS))}")
    await _reject_legacy_duplicate(client, run)
    return await client.start_workflow(
        WORKFLOW_TYPE,
        run,
        result_type=AgentRunResult,
        id=workflow_id_for(run.tenant_id, run.agent, run.trigger),
        task_queue=task_queue,
        # The id names the trigger: once used, never again, even after the run closes.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        # Shown by the Temporal UI; encrypted by the payload codec like the input itself.
        static_summary=f"{run.agent} for {run.tenant_id}",
        static_details=f"trigger {run.trigger}"
        + (f", focus {', '.join(run.focus)}" if run.focus else ""),
    )


async def _reject_legacy_duplicate(client: Client, run: AgentRunInput) -> None:
    """A trigger that started a run under the id format before the digest is still a
    duplicate: the migration path for the changed id (see `legacy_workflow_id_for`)."""
    legacy = legacy_workflow_id_for(run.tenant_id, run.agent, run.trigger)
    try:
        await client.get_workflow_handle(legacy).describe()
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return  # never started (or not a valid id under the old format)
        raise
    raise WorkflowAlreadyStartedError(legacy, "AgentLoop")


async def main() -> None:
    """Parse the arguments, connect, start the run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tenant")
    parser.add_argument("agent")
    parser.add_argument("trigger")
    parser.add_argument("--focus", action="append", default=[], help="record id to consider")
    parser.add_argument("--address", help="default: TEMPORAL_ADDRESS or the profile's")
    parser.add_argument("--namespace", help="default: TEMPORAL_NAMESPACE or the profile's")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args()

    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "127.0.0.1:7233")
    if args.address:
        config["target_host"] = args.address
    if args.namespace:
        config["namespace"] = args.namespace
    client = await Client.connect(**config, plugins=[CharterPlugin.from_settings(Settings())])
    run = AgentRunInput(
        tenant_id=args.tenant, agent=args.agent, trigger=args.trigger, focus=args.focus
    )
    try:
        handle = await start_run(client, run, task_queue=args.task_queue)
    except WorkflowAlreadyStartedError:
        print(f"already started: {workflow_id_for(run.tenant_id, run.agent, run.trigger)}")
        return
    print(f"started {handle.id}; follow it in the Temporal UI")


def entry() -> int:
    """`main()`, a configuration problem (no keys, no server) as one line and exit code 2."""
    try:
        asyncio.run(main())
    except Exception as exc:
        return refuse_in_one_line(exc, "starter")
    return 0


if __name__ == "__main__":
    exit_now(entry())
