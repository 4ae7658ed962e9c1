"""`charter usage`: tokens the reasoners consumed, per tenant and agent."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rich.table import Table

from charter.storage import usage
from charter_cli._arguments import add_json, add_tenant
from charter_cli._common import CliError, connected, console, print_json
from charter_cli._registration import Subcommands, command


def register(sub: Subcommands) -> None:
    parser = command(sub, "usage", cmd_usage)
    add_tenant(parser, required=False)
    parser.add_argument(
        "--since", metavar="DATE", help="only runs on or after this date (YYYY-MM-DD, UTC)"
    )
    add_json(parser)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise CliError(f"--since {value!r} is not a date (YYYY-MM-DD)") from None


def usage_table(rows: list[usage.UsageSummary]) -> Table:
    table = Table(title="reasoner token usage", title_justify="left")
    for col in ("tenant", "agent", "model", "runs", "requests", "input", "cache write"):
        table.add_column(
            col, justify="right" if col not in ("tenant", "agent", "model") else "left"
        )
    for col in ("cache read", "output", "cache hit"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r.tenant_id,
            r.agent,
            r.model,
            str(r.runs),
            str(r.requests),
            f"{r.input_tokens:,}",
            f"{r.cache_creation_input_tokens:,}",
            f"{r.cache_read_input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cache_hit_ratio:.0%}",
        )
    return table


async def cmd_usage(args: argparse.Namespace) -> int:
    """token usage of the reasoners (input, cached, output) per tenant and agent

    Summarise the token usage recorded in the audit trail for every run.
    """
    since = _since(args.since)
    rows: list[usage.UsageSummary] = []
    async with connected(args, temporal=False) as s:
        for tenant in [args.tenant] if args.tenant else await s.db.tenant_ids():
            async with s.db.tenant(tenant) as conn:
                rows += await usage.summarise(conn, tenant, since)
    if args.json:
        print_json(
            [{**r.model_dump(mode="json"), "cache_hit_ratio": r.cache_hit_ratio} for r in rows]
        )
        return 0
    if not rows:
        console.print("No reasoner usage recorded (the offline reasoner uses no tokens).")
        return 0
    console.print(usage_table(rows))
    return 0
