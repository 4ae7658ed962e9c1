"""`charter schedule create|list|pause|unpause|trigger|delete`: agents on Temporal Schedules.

A schedule starts `AgentLoop` for one tenant and agent every interval or on a cron
expression. Its id is deterministic (`schedule_id_for`), and so is each run's: Temporal
appends the scheduled time to `scheduled_workflow_id_prefix`, so a tick runs at most once.
Overlaps are skipped (a run still waiting on a human is not joined by the next tick), and
ticks missed while the cluster was down are caught up only within the catch-up window.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from charter.temporal.connection import connect
from charter_cli._common import CliError, add_json, console, print_json, stack_for
from schemas import AgentRunInput, schedule_id_for, scheduled_workflow_id_prefix
from workflows import AgentLoop

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `7d`."""
    found = _DURATION.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 15m, 1h or 1d")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def schedule_name(text: str) -> str:
    if not _NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a schedule name is a short slug (a-z, 0-9, - and _), e.g. daily"
        )
    return text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedule = sub.add_parser("schedule", help="run an agent on a Temporal Schedule")
    ssub = schedule.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")

    create = ssub.add_parser(
        "create",
        help="run AGENT for TENANT every interval or on a cron expression",
        description="Overlapping ticks are skipped; missed ticks are caught up only within "
        "--catchup-window.",
    )
    _target(create)
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=duration, help="interval: 30s, 15m, 1h, 1d")
    when.add_argument("--cron", help='cron expression, e.g. "0 9 * * 1-5" (UTC)')
    create.add_argument(
        "--catchup-window",
        type=duration,
        default=timedelta(hours=1),
        help="run ticks missed during an outage if no older than this (default 1h)",
    )
    create.add_argument("--focus", action="append", default=[], metavar="ID")
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--note", default="", help="why it exists (shown by list)")
    create.set_defaults(func=cmd_create)

    ls = ssub.add_parser("list", help="list Charter's schedules")
    ls.add_argument("--tenant", "-t", help="only this tenant's")
    add_json(ls)
    ls.set_defaults(func=cmd_list)

    for action, text in (
        ("pause", "stop starting runs until unpaused"),
        ("unpause", "start runs again"),
        ("trigger", "start one run now (skipped if one is still running)"),
        ("delete", "delete the schedule (runs it started are not touched)"),
    ):
        parser = ssub.add_parser(action, help=text)
        _target(parser)
        if action in ("pause", "unpause"):
            parser.add_argument("--note", default="", help="why, recorded on the schedule")
        parser.set_defaults(func=cmd_change, action=action)


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant")
    parser.add_argument("agent")
    parser.add_argument(
        "--name", type=schedule_name, default="default", help="tells schedules apart (default)"
    )


def build_schedule(args: argparse.Namespace, task_queue: str) -> Schedule:
    try:
        run = AgentRunInput(
            tenant_id=args.tenant,
            agent=args.agent,
            trigger=f"schedule-{args.name}",
            focus=args.focus,
        )
    except ValidationError as exc:
        raise CliError(f"invalid schedule: {exc.errors()[0]['msg']}") from None
    spec = (
        ScheduleSpec(intervals=[ScheduleIntervalSpec(every=args.every)])
        if args.every
        else ScheduleSpec(cron_expressions=[args.cron])
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            AgentLoop.run,
            run,
            id=scheduled_workflow_id_prefix(args.tenant, args.agent, args.name),
            task_queue=task_queue,
        ),
        spec=spec,
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=args.catchup_window
        ),
        state=ScheduleState(note=args.note or None, paused=args.paused),
    )


async def _client(args: argparse.Namespace) -> tuple[Client, str]:
    settings, stack = await stack_for(args)
    return await connect(settings, stack.temporal_address), settings.task_queue


async def cmd_create(args: argparse.Namespace) -> int:
    client, task_queue = await _client(args)
    schedule_id = schedule_id_for(args.tenant, args.agent, args.name)
    try:
        await client.create_schedule(schedule_id, build_schedule(args, task_queue))
    except ScheduleAlreadyRunningError:
        raise CliError(f"schedule {schedule_id} exists; delete it first to change it") from None
    except RPCError as exc:
        raise CliError(f"Temporal refused schedule {schedule_id}: {exc.message}") from None
    console.print(f"created {schedule_id}" + (" (paused)" if args.paused else ""))
    return 0


async def cmd_change(args: argparse.Namespace) -> int:
    client, _ = await _client(args)
    schedule_id = schedule_id_for(args.tenant, args.agent, args.name)
    handle: ScheduleHandle = client.get_schedule_handle(schedule_id)
    try:
        if args.action == "pause":
            await handle.pause(note=args.note or None)
        elif args.action == "unpause":
            await handle.unpause(note=args.note or None)
        elif args.action == "trigger":
            await handle.trigger()
        else:
            await handle.delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no schedule {schedule_id}") from None
        raise CliError(f"Temporal refused to {args.action} {schedule_id}: {exc.message}") from None
    past = {"pause": "paused", "unpause": "unpaused", "trigger": "triggered", "delete": "deleted"}
    console.print(f"{past[args.action]} {schedule_id}")
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    client, _ = await _client(args)
    prefix = "charter-schedule/" + (f"{args.tenant}/" if args.tenant else "")
    rows: list[dict[str, Any]] = []
    async for listed in await client.list_schedules():
        if not listed.id.startswith(prefix):
            continue
        # The list's entries are eventually consistent; describe is the schedule itself.
        described = await client.get_schedule_handle(listed.id).describe()
        _, tenant, agent, name = listed.id.split("/", 3)
        spec = described.schedule.spec
        state = described.schedule.state
        rows.append(
            {
                "id": listed.id,
                "tenant": tenant,
                "agent": agent,
                "name": name,
                "every": [str(i.every) for i in spec.intervals],
                "cron": list(spec.cron_expressions),
                "paused": state.paused,
                "note": state.note,
                "next": [t.isoformat() for t in described.info.next_action_times[:1]],
                "runs": described.info.num_actions,
                "skipped_overlaps": described.info.num_actions_skipped_overlap,
            }
        )
    rows.sort(key=lambda row: row["id"])
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        console.print("no schedules")
    for row in rows:
        when = ", ".join(["every " + e for e in row["every"]] + ["cron " + c for c in row["cron"]])
        status = "paused" if row["paused"] else f"next {row['next'][0] if row['next'] else '-'}"
        console.print(
            f"{row['id']}  {when}  {status}  runs {row['runs']}, "
            f"skipped {row['skipped_overlaps']}" + (f"  ({row['note']})" if row["note"] else "")
        )
    return 0
