"""`charter schedule create|list|pause|unpause|trigger|delete`: agents on Temporal Schedules,
and `charter schedule checkpoint ...`: signed audit checkpoints on Temporal Schedules.

An agent schedule starts `AgentLoop` for one tenant and agent every interval or on a cron
expression. Its id is deterministic (`schedule_id_for`), and so is each run's: Temporal
appends the scheduled time to `scheduled_workflow_id_prefix`, so a tick runs at most once.
Overlaps are skipped (a run still waiting on a human is not joined by the next tick), and
ticks missed while the cluster was down are caught up only within the catch-up window.

A checkpoint schedule starts `AuditCheckpoint` for one tenant (or every tenant) the same way
(`audit_schedule_id_for`, `audit_scheduled_workflow_id_prefix`): the worker verifies the
chains and appends a signed checkpoint of each head to the sink named by `--to`, a file or an
`s3://` location the database's administrators cannot write. Nothing relies on cron.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from charter.audit.sinks import FileSink, SinkLocationInvalid, sink_for
from charter.temporal.connection import connect
from charter_cli._arguments import add_json
from charter_cli._common import CliError, as_cli_errors, console, print_json, stack_for
from charter_cli._registration import Subcommands, command, command_group
from schemas import (
    AgentRunInput,
    AuditCheckpointInput,
    audit_schedule_id_for,
    audit_schedule_scope,
    audit_scheduled_workflow_id_prefix,
    schedule_id_for,
    scheduled_workflow_id_prefix,
)
from workflows import AgentLoop, AuditCheckpoint

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
AGENT, CHECKPOINT = "agent", "audit-checkpoint"


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


def register(sub: Subcommands) -> None:
    ssub = command_group(sub, "schedule", help="run an agent on a Temporal Schedule")

    create = command(ssub, "create", cmd_create)
    _target(create)
    _when(create)
    create.add_argument("--focus", action="append", default=[], metavar="ID")

    ls = command(ssub, "list", cmd_list)
    ls.add_argument("--tenant", "-t", help="only this tenant's")
    add_json(ls)
    _changes(ssub, _target)

    csub = command_group(
        ssub,
        "checkpoint",
        help="verify the audit chains and sign their heads into a sink, on a schedule",
    )
    ccreate = command(csub, "create", cmd_create_checkpoint)
    _checkpoint_target(ccreate)
    ccreate.add_argument(
        "--to",
        required=True,
        metavar="PATH_OR_URL",
        help="the sink, as the worker sees it: an absolute file path (JSON Lines, appended) "
        "or s3://bucket/prefix (one immutable object per checkpoint)",
    )
    _when(ccreate)
    listing = command(
        csub, "list", cmd_list, help="list the checkpoint schedules", tenant=None, kind=CHECKPOINT
    )
    add_json(listing)
    _changes(csub, _checkpoint_target)


def _when(parser: argparse.ArgumentParser) -> None:
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=duration, help="interval: 30s, 15m, 1h, 1d")
    when.add_argument("--cron", help='cron expression, e.g. "0 9 * * 1-5" (UTC)')
    parser.add_argument(
        "--catchup-window",
        type=duration,
        default=timedelta(hours=1),
        help="run ticks missed during an outage if no older than this (default 1h)",
    )
    parser.add_argument("--paused", action="store_true", help="create it paused")
    parser.add_argument("--note", default="", help="why it exists (shown by list)")


def _changes(
    sub: Subcommands,
    target: Callable[[argparse.ArgumentParser], None],
) -> None:
    for action, text in (
        ("pause", "stop starting runs until unpaused"),
        ("unpause", "start runs again"),
        ("trigger", "start one run now (skipped if one is still running)"),
        ("delete", "delete the schedule (runs it started are not touched)"),
    ):
        parser = command(sub, action, cmd_change, help=text, action=action)
        target(parser)
        if action in ("pause", "unpause"):
            parser.add_argument("--note", default="", help="why, recorded on the schedule")


def _name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", type=schedule_name, default="default", help="tells schedules apart (default)"
    )


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant")
    parser.add_argument("agent")
    _name(parser)
    parser.set_defaults(kind=AGENT)


def _checkpoint_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", "-t", help="only this tenant's chain (default: every tenant's)")
    _name(parser)
    parser.set_defaults(kind=CHECKPOINT)


def schedule_id(args: argparse.Namespace) -> str:
    if args.kind == CHECKPOINT:
        return audit_schedule_id_for(args.tenant, args.name)
    return schedule_id_for(args.tenant, args.agent, args.name)


def _spec(args: argparse.Namespace) -> ScheduleSpec:
    if args.every:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=args.every)])
    return ScheduleSpec(cron_expressions=[args.cron])


def _policy(args: argparse.Namespace) -> SchedulePolicy:
    # A run still going when the next tick comes is not joined by a second one.
    return SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=args.catchup_window)


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
    return Schedule(
        action=ScheduleActionStartWorkflow(
            AgentLoop.run,
            run,
            id=scheduled_workflow_id_prefix(args.tenant, args.agent, args.name),
            task_queue=task_queue,
        ),
        spec=_spec(args),
        policy=_policy(args),
        state=ScheduleState(note=args.note or None, paused=args.paused),
    )


def sink_location(text: str) -> str:
    """The sink as the worker will see it: a relative path would be relative to the worker's
    directory, not this shell's, so a path is made absolute here."""
    with as_cli_errors(SinkLocationInvalid):
        sink = sink_for(text)
    if isinstance(sink, FileSink):
        return str(sink.path.absolute())
    return sink.location


def checkpoint_input(args: argparse.Namespace) -> AuditCheckpointInput:
    try:
        return AuditCheckpointInput(sink=sink_location(args.to), tenant_id=args.tenant)
    except ValidationError as exc:
        raise CliError(f"invalid schedule: {exc.errors()[0]['msg']}") from None


def build_checkpoint_schedule(
    args: argparse.Namespace, checkpoint: AuditCheckpointInput, task_queue: str
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            AuditCheckpoint.run,
            checkpoint,
            id=audit_scheduled_workflow_id_prefix(args.tenant, args.name),
            task_queue=task_queue,
        ),
        spec=_spec(args),
        policy=_policy(args),
        state=ScheduleState(note=args.note or None, paused=args.paused),
    )


async def _client(args: argparse.Namespace) -> tuple[Client, str]:
    settings, stack = await stack_for(args)
    return await connect(settings, stack.temporal_address), settings.task_queue


async def cmd_create(args: argparse.Namespace) -> int:
    """run AGENT for TENANT every interval or on a cron expression

    Overlapping ticks are skipped; missed ticks are caught up only within --catchup-window.
    """
    client, task_queue = await _client(args)
    await _create(client, schedule_id(args), build_schedule(args, task_queue), args.paused)
    return 0


async def cmd_create_checkpoint(args: argparse.Namespace) -> int:
    """checkpoint every tenant's chain (or --tenant's) every interval or on a cron expression

    Each tick verifies the chains against the checkpoints already at --to and appends a
    signed checkpoint of each head that verifies; a broken chain fails the run with
    AuditChainBroken. The worker signs with its own key (CHARTER_AUDIT_SIGNING_KEY), which
    never enters the database or Temporal. Put --to where the database's administrators
    cannot write.
    """
    # Checked before connecting: a bad location or tenant is one line, with nothing created.
    checkpoint = checkpoint_input(args)
    client, task_queue = await _client(args)
    schedule = build_checkpoint_schedule(args, checkpoint, task_queue)
    await _create(client, schedule_id(args), schedule, args.paused)
    return 0


#: The memo key holding a schedule's cron expressions: the server compiles them into
#: calendars and describes only those.
CRON_MEMO = "charter_cron"


_ISO_DURATION = TypeAdapter(timedelta)


async def _cron_of(described: ScheduleDescription) -> list[str]:
    """The cron expressions the schedule was created with (kept in its memo)."""
    cron = (await described.memo()).get(CRON_MEMO)
    return [str(c) for c in cron] if isinstance(cron, list) else []


async def _create(client: Client, schedule_id: str, schedule: Schedule, paused: bool) -> None:
    try:
        await client.create_schedule(
            schedule_id, schedule, memo={CRON_MEMO: list(schedule.spec.cron_expressions)}
        )
    except ScheduleAlreadyRunningError:
        raise CliError(f"schedule {schedule_id} exists; delete it first to change it") from None
    except RPCError as exc:
        raise CliError(f"Temporal refused schedule {schedule_id}: {exc.message}") from None
    console.print(f"created {schedule_id}" + (" (paused)" if paused else ""))


async def cmd_change(args: argparse.Namespace) -> int:
    client, _ = await _client(args)
    handle: ScheduleHandle = client.get_schedule_handle(schedule_id(args))
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
            raise CliError(f"no schedule {handle.id}") from None
        raise CliError(f"Temporal refused to {args.action} {handle.id}: {exc.message}") from None
    past = {"pause": "paused", "unpause": "unpaused", "trigger": "triggered", "delete": "deleted"}
    console.print(f"{past[args.action]} {handle.id}")
    return 0


def _listed_kind(schedule_id: str) -> str | None:
    if schedule_id.startswith("charter-schedule/"):
        return AGENT
    if schedule_id.startswith("charter-audit-schedule/"):
        return CHECKPOINT
    return None


async def _checkpoint_sink(client: Client, described: ScheduleDescription) -> str | None:
    """The sink the schedule's runs write to, from its (encrypted) start input."""
    action = described.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or len(action.args) != 1:
        return None
    (checkpoint,) = await client.data_converter.decode(action.args, [AuditCheckpointInput])
    return checkpoint.sink if isinstance(checkpoint, AuditCheckpointInput) else None


async def cmd_list(args: argparse.Namespace) -> int:
    """list Charter's schedules (agents and checkpoints)"""
    client, _ = await _client(args)
    only = getattr(args, "kind", None)
    rows: list[dict[str, Any]] = []
    async for listed in await client.list_schedules():
        kind = _listed_kind(listed.id)
        if kind is None or (only is not None and kind != only):
            continue
        tenant: str | None
        agent: str | None
        if kind == AGENT:
            _, tenant, agent, name = listed.id.split("/", 3)
        else:
            _, scope, name = listed.id.split("/", 2)
            tenant, agent = (None if scope == audit_schedule_scope(None) else scope), None
        if args.tenant and tenant != args.tenant:
            continue
        # The list's entries are eventually consistent; describe is the schedule itself.
        described = await client.get_schedule_handle(listed.id).describe()
        spec = described.schedule.spec
        state = described.schedule.state
        rows.append(
            {
                "id": listed.id,
                "kind": kind,
                "tenant": tenant,
                "agent": agent,
                "name": name,
                "to": await _checkpoint_sink(client, described) if kind == CHECKPOINT else None,
                # ISO 8601 durations ("PT1H"), as every other duration Charter prints.
                "every": [_ISO_DURATION.dump_python(i.every, mode="json") for i in spec.intervals],
                "cron": list(spec.cron_expressions) or await _cron_of(described),
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
        to = f"  -> {row['to']}" if row["to"] else ""
        console.print(
            f"{row['id']}  {when}{to}  {status}  runs {row['runs']}, "
            f"skipped {row['skipped_overlaps']}" + (f"  ({row['note']})" if row["note"] else ""),
            markup=False,
        )
    return 0
