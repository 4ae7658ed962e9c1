"""The arguments many commands share: the tenant, who acts (`--as`), and `--json`."""

from __future__ import annotations

import argparse


def add_actor(parser: argparse.ArgumentParser, doing: str) -> None:
    """`--as`: who is doing it, recorded in the audit trail (`args.actor`)."""
    parser.add_argument("--as", dest="actor", default="cli", help=f"who is {doing} (audited)")


def add_member(parser: argparse.ArgumentParser, dest: str, help: str | None = None) -> None:
    """`--as MEMBER`, required: the member doing it, by id (`args.<dest>`)."""
    parser.add_argument("--as", dest=dest, required=True, metavar="MEMBER", help=help)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of tables (for scripts)"
    )


def add_tenant(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--tenant", "-t", required=required, help="tenant id (every query is scoped to one)"
    )
