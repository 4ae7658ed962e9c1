"""Start an agent run from your own service, using only Charter's public contract.

The contract: workflow type `AgentLoop`, task queue `charter`, input `AgentRunInput`,
result `AgentRunResult`, a deterministic workflow id (`workflow_id_for`), the pydantic data
converter (through `CharterPlugin`). A duplicate start of the same trigger is rejected.

    python starter.py acme payables invoice-received-INV-1041 --focus INV-1041
"""

from __future__ import annotations

import argparse
import asyncio

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from charter.runtime.process import exit_now
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput, AgentRunResult, workflow_id_for
from workflows import AgentLoop


async def start_run(
    client: Client, run: AgentRunInput, task_queue: str = "charter"
) -> WorkflowHandle[AgentLoop, AgentRunResult]:
    """Start `AgentLoop` for one trigger. Raises WorkflowAlreadyStartedError on a duplicate."""
    return await client.start_workflow(
        AgentLoop.run,
        run,
        id=workflow_id_for(run.tenant_id, run.agent, run.trigger),
        task_queue=task_queue,
        # The id names the trigger: once used, never again, even after the run closes.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tenant")
    parser.add_argument("agent")
    parser.add_argument("trigger")
    parser.add_argument("--focus", action="append", default=[], help="record id to consider")
    parser.add_argument("--address", default="127.0.0.1:7233")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="charter")
    args = parser.parse_args()

    client = await Client.connect(args.address, namespace=args.namespace, plugins=[CharterPlugin()])
    run = AgentRunInput(
        tenant_id=args.tenant, agent=args.agent, trigger=args.trigger, focus=args.focus
    )
    try:
        handle = await start_run(client, run, task_queue=args.task_queue)
    except WorkflowAlreadyStartedError:
        print(f"already started: {workflow_id_for(run.tenant_id, run.agent, run.trigger)}")
        return
    print(f"started {handle.id}; follow it in the Temporal UI")


if __name__ == "__main__":
    asyncio.run(main())
    exit_now(0)
