"""`charter audit`: verify, checkpoint and export the append-only, hash-chained audit trail.

`verify` recomputes every chain with `charter.audit.chain` (no code shared with the writer or the
database) and checks it against heads recorded outside PostgreSQL: signed checkpoints from
`checkpoint`, and with `--temporal` the final audit head of every completed run in Temporal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from charter.audit.chain import (
    Anchor,
    AuditEntry,
    ChainEntry,
    ChainReport,
    ChainVerifier,
    MalformedEntry,
    verify_chain,
)
from charter.audit.checkpoints import (
    CheckpointError,
    append_checkpoints,
    load_signing_key,
    read_checkpoints,
    sign,
    verified_anchor,
)
from charter.audit.ledger import Ledger, add_to_ledger, differences
from charter.governance import proofs
from charter.runtime.config import Settings
from charter.storage import Database, audit, spend
from charter.storage.db import TenantRequired, valid_tenant
from charter_cli._common import CliError, add_tenant, console, session, stack_for
from schemas import AgentRunResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("audit", help="the append-only, hash-chained audit trail")
    group_sub = group.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    verify = group_sub.add_parser(
        "verify",
        help="recompute the hash chain of one tenant (or all), check it against signed "
        "checkpoints, and name the first bad entry",
    )
    add_tenant(verify, required=False)
    verify.add_argument(
        "--checkpoints",
        type=Path,
        help="signed checkpoints file (default: CHARTER_AUDIT_CHECKPOINTS or the state dir's)",
    )
    verify.add_argument(
        "--temporal",
        action="store_true",
        help="also check the final audit head of every completed run recorded in Temporal",
    )
    verify.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="verify a JSON Lines export instead of the database (no database needed)",
    )
    verify.set_defaults(func=cmd_verify)

    checkpoint = group_sub.add_parser(
        "checkpoint",
        help="verify each chain, then append a signed checkpoint of its head to the "
        "checkpoints file (the key is never stored in the database)",
    )
    add_tenant(checkpoint, required=False)
    checkpoint.add_argument("--checkpoints", type=Path, help="checkpoints file to append to")
    checkpoint.set_defaults(func=cmd_checkpoint)

    export = group_sub.add_parser(
        "export", help="write every entry (one tenant or all) as JSON Lines for an auditor"
    )
    add_tenant(export, required=False)
    export.add_argument("--out", "-o", type=Path, help="output file (default: stdout)")
    export.set_defaults(func=cmd_export)


def _tenants(args: argparse.Namespace) -> list[str] | None:
    """The --tenant given, validated before anything touches the database; None for all."""
    if args.tenant is None:
        return None
    try:
        return [valid_tenant(args.tenant)]
    except TenantRequired as exc:
        raise CliError(str(exc)) from None


# -- anchors ------------------------------------------------------------------------------


def checkpoint_anchors(settings: Settings, path: Path | None) -> dict[str, list[Anchor]]:
    """Every checkpoint in the file, signature-checked; a bad one is an error, not skipped."""
    checkpoints = read_checkpoints(path or settings.audit_checkpoints_file)
    if not checkpoints:
        return {}
    key = load_signing_key(
        settings.audit_signing_key, settings.audit_signing_key_file, create=False
    )
    anchors: dict[str, list[Anchor]] = {}
    for checkpoint in checkpoints:
        anchor = verified_anchor(key.public_key(), checkpoint)
        anchors.setdefault(anchor.tenant_id, []).append(anchor)
    return anchors


async def temporal_anchors(client: Client, tenant_id: str) -> list[Anchor]:
    """The audit head each completed run of the tenant anchored in its Temporal result."""
    valid_tenant(tenant_id)  # it goes into a visibility query
    query = (
        f"WorkflowType = 'AgentLoop' AND CharterTenant = '{tenant_id}' "
        "AND ExecutionStatus = 'Completed'"
    )
    anchors = []
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(
            execution.id, run_id=execution.run_id, result_type=AgentRunResult
        )
        result = await handle.result()
        if result.tenant_id != tenant_id:
            continue
        anchors.append(
            Anchor(
                tenant_id=tenant_id,
                seq=result.audit_head.seq,
                hash=result.audit_head.hash,
                source=f"Temporal result of {execution.id}",
            )
        )
    return anchors


# -- verify -------------------------------------------------------------------------------


async def verify_tenants(
    db: Database,
    tenants: list[str] | None = None,
    anchors: dict[str, list[Anchor]] | None = None,
) -> list[ChainReport]:
    reports = []
    for tenant in tenants or await db.tenant_ids():
        verifier = ChainVerifier(tenant, (anchors or {}).get(tenant, []))
        # Rebuilt as the entries stream by: keeping 100,000 entries until the end made
        # the garbage collector walk them over and over (a third of the verification).
        rebuilt: Ledger = {}
        broken: ChainReport | None = None
        async with db.tenant(tenant) as conn:
            # Each entry is checked as it arrives (the next batch is on its way meanwhile);
            # the first that does not fit ends the chain's report, as in `verify_chain`.
            async with contextlib.aclosing(audit.readable_entries(conn, tenant)) as entries:
                async for entry in entries:
                    if (broken := verifier.add(entry)) is not None:
                        break
                    if isinstance(entry, ChainEntry):
                        add_to_ledger(rebuilt, entry)
            stored = await spend.entries(conn, tenant)
        report = broken or verifier.finish()
        # The spend ledger must be what the trail says it is: limits are enforced against it.
        problems = differences(rebuilt, stored)
        if report.ok and problems:
            report = report.model_copy(update={"ok": False, "problem": "; ".join(problems)})
        reports.append(report)
    return reports


def _malformed(line: str, exc: ValueError) -> MalformedEntry | None:
    try:
        raw = json.loads(line)
        tenant, seq = raw["tenant_id"], raw["seq"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(tenant, str) or not isinstance(seq, int):
        return None
    return MalformedEntry(tenant_id=tenant, seq=seq, problem=str(exc).splitlines()[-1][:300])


def _unattributable(number: int, exc: ValueError) -> MalformedEntry:
    raise CliError(f"export line {number} is not an audit entry: {exc}") from None


def verify_export(
    lines: Iterable[str], tenants: list[str] | None, anchors: dict[str, list[Anchor]]
) -> list[ChainReport]:
    by_tenant: dict[str, list[AuditEntry | MalformedEntry]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry: AuditEntry | MalformedEntry = AuditEntry.model_validate_json(line)
        except ValueError as exc:
            # Attributed to its tenant and seq when the line names them, so that tenant's
            # report shows it and every other tenant's report goes on.
            entry = _malformed(line, exc) or _unattributable(number, exc)
        by_tenant.setdefault(entry.tenant_id, []).append(entry)
    return [
        verify_chain(t, by_tenant.get(t, []), anchors.get(t, []))
        for t in (tenants or sorted(by_tenant))
    ]


def reports_table(reports: list[ChainReport]) -> Group:
    """One row per chain, then each problem in full below the table (never cut short)."""
    table = Table(title="audit chain", title_justify="left")
    for col in ("tenant", "entries", "head", "anchors", "pending actions", "status"):
        # The head hash is what an auditor compares: never cut it short.
        table.add_column(col, no_wrap=col == "head")
    problems: list[str] = []
    for r in reports:
        where = f" at seq {r.first_bad_seq}" if r.first_bad_seq is not None else ""
        status = "[green]verified[/]" if r.ok else f"[red]BROKEN{where}[/]"
        if not r.ok:
            seq = f"seq {r.first_bad_seq}: " if r.first_bad_seq is not None else ""
            problems.append(f"[red]{r.tenant_id}: {seq}{r.problem}[/]")
        pending = ", ".join(r.pending_actions) or "-"
        table.add_row(
            r.tenant_id, str(r.entries), r.head_hash, str(r.anchors_checked), pending, status
        )
    return Group(table, *problems)


async def cmd_verify(args: argparse.Namespace) -> int:
    settings = Settings()
    tenants = _tenants(args)
    try:
        anchors = checkpoint_anchors(settings, args.checkpoints)
    except CheckpointError as exc:
        console.print(f"[bold red]checkpoints do not verify:[/] {exc}")
        return 1
    # Proofs are checked against the database's keys and rows; an export is checked as a chain.
    unproven: list[str] = []
    if args.export is not None:
        if args.temporal:
            raise CliError("--temporal needs the database's tenants; drop --export")
        try:
            lines = args.export.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CliError(f"cannot read {args.export}: {exc.strerror}") from None
        reports = verify_export(lines, tenants, anchors)
    else:
        settings, stack = await stack_for(args)
        async with session(settings, stack, temporal=args.temporal) as s:
            tenants = tenants or await s.db.tenant_ids()
            if s.client is not None:
                for tenant in tenants:
                    anchors.setdefault(tenant, []).extend(await temporal_anchors(s.client, tenant))
            reports = await verify_tenants(s.db, tenants, anchors)
            unproven = await proof_problems(s.db, tenants)
    console.print(reports_table(reports))
    for problem in unproven:
        console.print(Text(f"unproven: {problem}", style="red"))
    return 0 if all(r.ok for r in reports) and not unproven else 1


async def proof_problems(db: Database, tenants: list[str]) -> list[str]:
    """Decisions without a valid signed statement, and approvals claimed without one."""
    problems: list[str] = []
    for tenant in tenants:
        async with db.tenant(tenant) as conn:
            entries = [(e.seq, e.kind, e.snapshot) async for e in audit.entries(conn, tenant)]
            problems += await proofs.audit_problems(conn, tenant, entries)
    return problems


# -- checkpoint ---------------------------------------------------------------------------


async def cmd_checkpoint(args: argparse.Namespace) -> int:
    tenants = _tenants(args)
    settings, stack = await stack_for(args)
    path = args.checkpoints or settings.audit_checkpoints_file
    try:
        anchors = checkpoint_anchors(settings, path)
        key = load_signing_key(
            settings.audit_signing_key, settings.audit_signing_key_file, create=True
        )
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    async with session(settings, stack, temporal=False) as s:
        reports = await verify_tenants(s.db, tenants, anchors)
    broken = [r for r in reports if not r.ok]
    # Signing a broken chain would launder the damage: refuse those tenants.
    signed = [
        sign(key, r.tenant_id, r.head_seq, r.head_hash) for r in reports if r.ok and r.head_seq
    ]
    if signed:
        append_checkpoints(path, signed)
        table = Table(title=f"signed checkpoints -> {path}", title_justify="left")
        for col in ("tenant", "seq", "head", "key"):
            table.add_column(col)
        for c in signed:
            table.add_row(c.tenant_id, str(c.seq), c.hash, c.key_id)
        console.print(table)
    if broken:
        console.print(reports_table(broken))
        return 1
    return 0


# -- export -------------------------------------------------------------------------------


async def cmd_export(args: argparse.Namespace) -> int:
    tenants = _tenants(args)
    settings, stack = await stack_for(args)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    count = 0
    try:
        async with session(settings, stack, temporal=False) as s:
            for tenant in tenants or await s.db.tenant_ids():
                async with s.db.tenant(tenant) as conn:
                    async for entry in audit.entries(conn, tenant):
                        out.write(entry.model_dump_json() + "\n")
                        count += 1
    finally:
        if args.out:
            out.close()
    if args.out:
        console.print(f"exported {count} entries to {args.out}")
    return 0
