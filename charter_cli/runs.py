"""`charter run`: start an agent run for a tenant."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from urllib.parse import quote

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from charter.presentation.report import run_table
from charter_cli._arguments import add_json
from charter_cli._common import CliError, as_cli_errors, console, print_json, session, stack_for
from charter_cli._registration import Subcommands, command
from schemas import AgentRunInput, RunState, workflow_id_for
from starter import start_run
from workflows import AgentLoop


def register(sub: Subcommands) -> None:
    run = command(sub, "run", cmd_run)
    run.add_argument("tenant")
    run.add_argument("agent", help="payables, marketing or payroll")
    run.add_argument("--trigger", help="what started the run (default: manual-<timestamp>)")
    run.add_argument(
        "--focus",
        action="append",
        default=[],
        metavar="ID",
        help="only consider this record (repeatable)",
    )
    run.add_argument(
        "--as",
        dest="requested_by",
        metavar="MEMBER",
        help="the member asking for the run (may not approve it)",
    )
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="return at once instead of waiting for the gate's verdicts",
    )
    add_json(run)


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    return f"{ui_url}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


def root_cause(exc: BaseException) -> str:
    """The innermost failure's message: what the activity or workflow itself said."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


async def raise_if_closed_without_success(handle: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """A run that failed, was terminated, cancelled or timed out is reported at once."""
    status = (await handle.describe()).status
    if status in (None, WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        return
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        raise CliError(f"run {handle.id} {status.name.lower()}: {root_cause(exc)}") from None
    raise CliError(f"run {handle.id} {status.name.lower()}")


async def wait_for_verdicts(handle: WorkflowHandle, timeout: float = 60.0) -> RunState:  # type: ignore[type-arg]
    """Poll the `state` query until the run has acted or is waiting on humans; a run that
    closed without success is reported with its failure as soon as it closes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await raise_if_closed_without_success(handle)
        state: RunState = await handle.query(AgentLoop.state)
        settled = state.stage in ("awaiting_decision", "completed")
        if settled and not any(p.status == "gated" for p in state.proposals):
            return state
        if loop.time() > deadline:
            raise CliError(
                f"run {handle.id} did not settle within {timeout:.0f}s (stage {state.stage})"
            )
        await asyncio.sleep(0.2)


async def cmd_run(args: argparse.Namespace) -> int:
    """start an agent run for a tenant

    Start AgentLoop for TENANT and AGENT. The same --trigger never runs twice.
    """
    settings, stack = await stack_for(args)
    trigger = args.trigger or "manual-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with as_cli_errors(ValueError):
        run = AgentRunInput(
            tenant_id=args.tenant,
            agent=args.agent,
            trigger=trigger,
            focus=args.focus,
            requested_by=args.requested_by,
            decision_timeout=settings.decision_timeout,
            reminder_interval=settings.reminder_interval,
        )
    async with session(settings, stack) as s:
        assert s.client is not None
        try:
            handle = await start_run(s.client, run, task_queue=settings.task_queue)
        except WorkflowAlreadyStartedError:
            raise CliError(
                f"trigger {trigger!r} already ran: {workflow_id_for(args.tenant, args.agent, trigger)}"
            ) from None
        except ValueError as exc:  # an agent no connector serves: refused before starting
            raise CliError(str(exc)) from None
        link = ui_link(stack.ui_url, settings.temporal_namespace, handle.id)
        if not args.json:
            console.print(f"started {handle.id}")
            console.print(link)
        if args.no_wait:
            if args.json:
                print_json({"workflow_id": handle.id, "ui": link})
            return 0
        state = await wait_for_verdicts(handle)
        if args.json:
            print_json({"workflow_id": handle.id, "ui": link, "state": state})
            return 0
        console.print(run_table(f"{args.tenant} · {args.agent}", state.proposals))
    return 0
