"""`charter constitution apply|show|history|diff|backtest`: the tenant's law, versioned."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import yaml
from rich.table import Table
from rich.text import Text

from charter.governance.constitution import ConstitutionError
from charter.governance.constitution_diff import diff
from charter.presentation.inert import plain
from charter.presentation.report import money
from charter.services import law_proofs
from charter.services.adoption import NotAnOwner, adopt, run_backtest
from charter.storage import constitution_versions
from charter_cli._arguments import add_json, add_member, add_tenant
from charter_cli._common import CliError, as_cli_errors, connected, console, print_json
from charter_cli._registration import Subcommands, command, command_group


def register(sub: Subcommands) -> None:
    group_sub = command_group(
        sub,
        "constitution",
        help="apply, inspect, compare and backtest a tenant's constitution",
        description="A constitution is versioned law: every apply stores a new, immutable version.",
    )

    apply = command(group_sub, "apply", cmd_apply)
    apply.add_argument("file", type=Path, help="the constitution, YAML")
    add_tenant(apply)
    add_member(apply, "member", "the member applying it: must be an active owner of the tenant")
    apply.add_argument("--note", default="", help="why, for the version history")
    add_json(apply)

    show = command(group_sub, "show", cmd_show)
    show.add_argument("version", nargs="?", type=int, help="version number")
    add_tenant(show)
    add_json(show)

    history = command(group_sub, "history", cmd_history)
    add_tenant(history)
    add_json(history)

    compare = command(group_sub, "diff", cmd_diff)
    compare.add_argument("a", type=int, help="the older version")
    compare.add_argument("b", type=int, help="the newer version")
    add_tenant(compare)
    add_json(compare)

    bt = command(group_sub, "backtest", cmd_backtest)
    bt.add_argument("file", type=Path, help="the candidate constitution, YAML")
    add_tenant(bt)
    bt.add_argument(
        "--since", help="only proposals recorded at or after this date or instant (ISO 8601)"
    )
    bt.add_argument("--all", action="store_true", help="also list unchanged decisions")
    add_json(bt)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--since {value!r} is not an ISO 8601 date or instant") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def cmd_apply(args: argparse.Namespace) -> int:
    """validate a YAML constitution and store it as the next version (owners only)"""
    text = _read(args.file)
    async with connected(args, temporal=False) as s:
        if s.stack.admin_dsn is None:
            # The law is the owner's to write, never the application role's.
            raise CliError("constitution apply needs the administrator's DATABASE_URL")
        with as_cli_errors(ConstitutionError, NotAnOwner):
            adopted = await adopt(
                s.stack.admin_dsn, args.tenant, text, by=args.member, note=args.note
            )
    c = adopted.constitution
    if args.json:
        print_json(
            {
                "tenant_id": args.tenant,
                "version": c.version,
                "content_hash": c.content_hash,
                "created": adopted.created,
                "rules": len(c.document.rules),
            }
        )
        return 0
    if adopted.created:
        console.print(
            f"[green]applied[/] {args.file} as v{c.version} of {args.tenant} "
            f"({c.content_hash[:12]}…, {len(c.document.rules)} rules)"
        )
    else:
        console.print(f"unchanged: {args.file} is identical to v{c.version} of {args.tenant}")
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    """print a version as YAML (default: the latest)"""
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        with as_cli_errors(constitution_versions.ConstitutionNotFound):
            c = await constitution_versions.get(conn, args.tenant, args.version)
    if args.json:
        print_json(
            {
                "tenant_id": args.tenant,
                "version": c.version,
                "content_hash": c.content_hash,
                "document": c.document.model_dump(mode="json", exclude_none=True),
            }
        )
        return 0
    console.print(
        f"# {args.tenant} constitution v{c.version} · sha256 {c.content_hash}", soft_wrap=True
    )
    # Exact YAML, never wrapped or marked up, so it can be edited and applied again.
    console.out(
        yaml.safe_dump(
            c.document.model_dump(mode="json", exclude_none=True),
            sort_keys=False,
            allow_unicode=True,
            width=10_000,
        ),
        highlight=False,
        end="",
    )
    return 0


async def cmd_history(args: argparse.Namespace) -> int:
    """list every version with who made it and why"""
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        versions = await constitution_versions.history(conn, args.tenant)
        unproven = {
            v.version: await law_proofs.why_unproven(conn, args.tenant, v.version) for v in versions
        }
    if not versions:
        raise CliError(f"tenant {args.tenant!r} has no constitution")
    if args.json:
        print_json(
            [{**v.model_dump(mode="json"), "unproven": unproven[v.version]} for v in versions]
        )
        return 0
    table = Table(title=f"constitution history · {args.tenant}", title_justify="left")
    for col in ("version", "hash", "rules", "by", "proof", "when", "source / note"):
        table.add_column(col)
    for v in versions:
        table.add_row(
            f"v{v.version}",
            v.content_hash[:12],
            str(v.rules),
            plain(v.created_by),
            _proof(v.made_by, unproven[v.version]),
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            plain(f"{v.source}: {v.note}" if v.note else v.source),
        )
    console.print(table)
    return 0


def _proof(made_by: str, unproven: str | None) -> Text:
    """What makes a version law: the owner role wrote it, or its signed decision proves it."""
    if unproven is not None:
        return plain(f"UNPROVEN: {unproven}", "bold red")
    return Text("owner role" if made_by == "owner" else "signed decision")


async def cmd_diff(args: argparse.Namespace) -> int:
    """what changed between two versions, rule by rule"""
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        with as_cli_errors(constitution_versions.ConstitutionNotFound):
            a = await constitution_versions.get(conn, args.tenant, args.a)
            b = await constitution_versions.get(conn, args.tenant, args.b)
    changes = diff(a.document, b.document)
    if args.json:
        print_json({"tenant_id": args.tenant, "a": a.version, "b": b.version, "changes": changes})
        return 0
    if not changes:
        console.print(f"v{a.version} and v{b.version} are identical")
        return 0
    table = Table(title=f"{args.tenant}: v{a.version} → v{b.version}", title_justify="left")
    for col in ("change", "what", "details"):
        table.add_column(col)
    style = {"added": "green", "removed": "red", "changed": "yellow"}
    for change in changes:
        details = "\n".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in change.fields.items())
        table.add_row(f"[{style[change.kind]}]{change.kind}[/]", change.subject, details)
    console.print(table)
    return 0


async def cmd_backtest(args: argparse.Namespace) -> int:
    """replay recorded proposals through a candidate constitution, without adopting it"""
    text = _read(args.file)
    since = _since(args.since)
    async with connected(args, temporal=False) as s:
        with as_cli_errors(ConstitutionError):
            report = await run_backtest(s.db, args.tenant, text, since=since)
    if args.json:
        cases = [c for c in report.cases if c.changed or args.all]
        print_json(
            {
                **report.model_dump(mode="json", exclude={"cases"}),
                "summary": report.summary(),
                "cases": cases,
            }
        )
        return 0
    table = Table(
        title=f"backtest · {args.tenant} · candidate {report.candidate_hash[:12]}…",
        title_justify="left",
        caption=", ".join(f"{k}: {n}" for k, n in report.summary().items())
        + (f"; {report.skipped} without an observation" if report.skipped else ""),
        caption_justify="left",
    )
    for col in (
        "run / #",
        "action",
        "counterparty / ref",
        "amount",
        "was (v)",
        "would be",
        "human",
    ):
        table.add_column(col)
    for case in report.cases:
        if not case.changed and not args.all:
            continue
        table.add_row(
            f"{case.workflow_id.rsplit('/', 1)[-1]} / {case.proposal_id}",
            case.action,
            f"{case.counterparty or '-'} / {case.reference or '-'}",
            money(case.amount),
            f"{case.recorded} (v{case.recorded_version})",
            f"[bold]{case.candidate}[/]" if case.changed else case.candidate,
            case.human or "-",
        )
    console.print(table)
    return 0
