"""`charter audit`: verify, checkpoint and export the append-only, hash-chained audit trail.

`verify` recomputes every chain with `charter.audit.chain` (no code shared with the writer or the
database) and checks it against heads recorded outside PostgreSQL: signed checkpoints from
`checkpoint`, and with `--temporal` the final audit head of every completed run in Temporal.
"""

from __future__ import annotations

import argparse
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
    ChainReport,
    MalformedEntry,
    verify_chain,
)
from charter.audit.checkpoints import CheckpointError, load_signing_key
from charter.audit.sinks import (
    CheckpointSink,
    FileSink,
    SinkLocationInvalid,
    SinkUnavailable,
    sink_for,
)
from charter.config.settings import Settings
from charter.connectors import ConnectorError
from charter.crypto.anchors import TrustAnchors, configured_anchors
from charter.services import proof_audit
from charter.services.audit_verification import (
    SigningKeySource,
    anchors_from,
    checkpoint,
    verify_tenants,
)
from charter.services.duplicate_payments import duplicate_detail, duplicate_payments
from charter.storage import Database, audit_trail
from charter.storage.credential_vault import CredentialVault
from charter.storage.db import TenantRequired, valid_tenant
from charter_cli._arguments import add_json, add_tenant
from charter_cli._common import (
    CliError,
    as_cli_errors,
    connected,
    console,
    print_json,
    session,
    stack_for,
)
from charter_cli._registration import Subcommands, command, command_group
from schemas import AgentRunResult


def register(sub: Subcommands) -> None:
    group_sub = command_group(sub, "audit", help="the append-only, hash-chained audit trail")

    verify = command(group_sub, "verify", cmd_verify)
    _chains_and_checkpoints(verify, "signed checkpoints")
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
    add_json(verify)

    checkpoint = command(group_sub, "checkpoint", cmd_checkpoint)
    _chains_and_checkpoints(
        checkpoint, "where to append", "; `charter schedule checkpoint` runs this on a schedule"
    )
    add_json(checkpoint)

    export = command(group_sub, "export", cmd_export)
    add_tenant(export, required=False)
    export.add_argument("--out", "-o", type=Path, help="output file (default: stdout)")


def _chains_and_checkpoints(parser: argparse.ArgumentParser, what: str, more: str = "") -> None:
    """`--tenant` (every tenant's chain without it) and `--checkpoints`, the sink of signed
    checkpoints."""
    add_tenant(parser, required=False)
    parser.add_argument(
        "--checkpoints",
        metavar="PATH_OR_URL",
        help=f"{what}: a file or s3://bucket/prefix (default: CHARTER_AUDIT_CHECKPOINTS or the "
        f"state dir's file){more}",
    )


def _tenants(args: argparse.Namespace) -> list[str] | None:
    """The --tenant given, validated before anything touches the database; None for all."""
    if args.tenant is None:
        return None
    with as_cli_errors(TenantRequired):
        return [valid_tenant(args.tenant)]


# -- anchors ------------------------------------------------------------------------------


def checkpoint_sink(settings: Settings, location: str | None) -> CheckpointSink:
    with as_cli_errors(SinkLocationInvalid):
        return sink_for(location or settings.audit_checkpoints_location)


def checkpoint_anchors(
    settings: Settings, sink: CheckpointSink, tenants: list[str] | None
) -> dict[str, list[Anchor]]:
    """Every checkpoint in the sink, signature-checked; a bad one is an error, not skipped."""
    with as_cli_errors(SinkUnavailable):
        checkpoints = sink.prior(tenants)
    if not checkpoints:
        return {}
    key = load_signing_key(
        settings.audit_signing_key, settings.audit_signing_key_file, create=False
    )
    return anchors_from(checkpoints, key.public_key())


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
    """recompute the hash chain of one tenant (or all), check it against signed checkpoints,
    and name the first bad entry"""
    settings = Settings()
    tenants = _tenants(args)
    sink = checkpoint_sink(settings, args.checkpoints)
    if args.checkpoints and isinstance(sink, FileSink) and not sink.path.exists():
        # Named, so expected: a missing file would otherwise verify against nothing.
        raise CliError(f"no checkpoints file at {sink.path}")
    try:
        anchors = checkpoint_anchors(settings, sink, tenants)
    except CheckpointError as exc:
        if args.json:
            print_json({"ok": False, "problem": f"checkpoints do not verify: {exc}", "chains": []})
            return 1
        console.print(f"[bold red]checkpoints do not verify:[/] {exc}")
        return 1
    # Proofs are checked against the database's keys and rows; an export is checked as a chain.
    unproven: list[str] = []
    doubled: list[str] = []
    if args.export is not None:
        if args.temporal:
            raise CliError("--temporal needs the database's tenants; drop --export")
        try:
            lines = args.export.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CliError(f"cannot read {args.export}: {exc.strerror}") from None
        reports = verify_export(lines, tenants, anchors)
    else:
        async with connected(args, temporal=args.temporal) as s:
            tenants = tenants or await s.db.tenant_ids()
            if s.client is not None:
                for tenant in tenants:
                    anchors.setdefault(tenant, []).extend(await temporal_anchors(s.client, tenant))
            reports = await verify_tenants(s.db, tenants, anchors)
            unproven = await proof_problems(s.db, tenants, configured_anchors(s.settings))
            doubled = await doubled_payments(s.db, tenants, CredentialVault(s.settings))
    ok = all(r.ok for r in reports) and not unproven and not doubled
    if args.json:
        # Each chain's report names its first bad entry (`first_bad_seq`) and the problem.
        print_json({"ok": ok, "chains": reports, "unproven": unproven, "doubled": doubled})
        return 0 if ok else 1
    console.print(reports_table(reports))
    for problem in unproven:
        console.print(Text(f"unproven: {problem}", style="red"))
    for problem in doubled:
        console.print(Text(problem, style="bold red"))
    return 0 if ok else 1


async def doubled_payments(db: Database, tenants: list[str], vault: CredentialVault) -> list[str]:
    """Bills with more than one live order at the payments provider (asked with a read
    credential); a provider that cannot be asked is a problem too, not a pass."""
    readers = vault.scoped("read")
    problems: list[str] = []
    for tenant in tenants:
        try:
            found = await duplicate_payments(db, tenant, readers)
        except ConnectorError as exc:
            problems.append(f"{tenant}: cannot list the payment orders of each bill: {exc}")
            continue
        problems.extend(f"{tenant}: {duplicate_detail(d)}" for d in found)
    return problems


async def proof_problems(
    db: Database, tenants: list[str], anchors: TrustAnchors | None = None
) -> list[str]:
    """Decisions without a valid signed statement, approvals claimed without one,
    constitution versions nothing proves and owner keys their trust anchor does not list."""
    problems: list[str] = []
    for tenant in tenants:
        problems += await proof_audit.tenant_proof_problems(db, tenant, anchors)
    return problems


# -- checkpoint ---------------------------------------------------------------------------


async def cmd_checkpoint(args: argparse.Namespace) -> int:
    """verify each chain, then append a signed checkpoint of its head to the checkpoints file
    (the key is never stored in the database)"""
    tenants = _tenants(args)
    # A location that names no sink is one line, before any stack starts.
    sink = checkpoint_sink(Settings(), args.checkpoints)
    settings, stack = await stack_for(args)
    keys = SigningKeySource(
        settings.audit_signing_key, settings.audit_signing_key_file, create=True
    )
    async with session(settings, stack, temporal=False) as s:
        with as_cli_errors(CheckpointError, SinkUnavailable):
            run = await checkpoint(s.db, sink, keys, tenants)
    if args.json:
        print_json({"checkpoints": sink.location, "signed": run.signed, "broken": run.broken})
        return 1 if run.broken else 0
    if run.signed:
        table = Table(title=f"signed checkpoints -> {sink.location}", title_justify="left")
        for col in ("tenant", "seq", "head", "key"):
            table.add_column(col)
        for c in run.signed:
            table.add_row(c.tenant_id, str(c.seq), c.hash, c.key_id)
        console.print(table)
    if run.broken:
        console.print(reports_table(run.broken))
        return 1
    return 0


# -- export -------------------------------------------------------------------------------


async def cmd_export(args: argparse.Namespace) -> int:
    """write every entry (one tenant or all) as JSON Lines for an auditor"""
    tenants = _tenants(args)
    settings, stack = await stack_for(args)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    count = 0
    try:
        async with session(settings, stack, temporal=False) as s:
            for tenant in tenants or await s.db.tenant_ids():
                async with s.db.tenant(tenant) as conn:
                    async for entry in audit_trail.entries(conn, tenant):
                        out.write(entry.model_dump_json() + "\n")
                        count += 1
    finally:
        if args.out:
            out.close()
    if args.out:
        console.print(f"exported {count} entries to {args.out}")
    return 0
