"""`charter audit verify`: recompute every hash chain independently of the database."""

from __future__ import annotations

import argparse

from rich.table import Table

from charter.audit import ChainReport, verify_chain
from charter.cli._common import add_tenant, console, session, stack_for
from charter.storage import Database, audit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("audit", help="the append-only, hash-chained audit trail")
    group_sub = group.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = group_sub.add_parser(
        "verify",
        help="recompute the hash chain of one tenant (or all) and name the first bad entry",
    )
    add_tenant(verify, required=False)
    verify.set_defaults(func=cmd_verify)


async def verify_tenants(db: Database, tenants: list[str] | None = None) -> list[ChainReport]:
    reports = []
    for tenant in tenants or await db.tenant_ids():
        async with db.tenant(tenant) as conn:
            reports.append(verify_chain(tenant, [e async for e in audit.entries(conn, tenant)]))
    return reports


def reports_table(reports: list[ChainReport]) -> Table:
    table = Table(title="audit chain", title_justify="left")
    for col in ("tenant", "entries", "head", "status"):
        table.add_column(col)
    for r in reports:
        status = (
            "[green]verified[/]"
            if r.ok
            else f"[red]BROKEN at seq {r.first_bad_seq}: {r.problem}[/]"
        )
        table.add_row(r.tenant_id, str(r.entries), r.head_hash, status)
    return table


async def cmd_verify(args: argparse.Namespace) -> int:
    settings, stack = await stack_for(args)
    async with session(settings, stack, temporal=False) as s:
        reports = await verify_tenants(s.db, [args.tenant] if args.tenant else None)
    console.print(reports_table(reports))
    return 0 if all(r.ok for r in reports) else 1
