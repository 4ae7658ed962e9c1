"""What every command module's `register(sub)` shares: the group, and who acts (`--as`).

Each command still names its own arguments where it registers them; this holds only what is
the same for all of them.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

#: What `register(sub)` of every command module gets: `charter`'s subcommands.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def command_group(
    sub: Subcommands, name: str, *, help: str, description: str | None = None
) -> Subcommands:
    """`charter NAME ACTION ...`: the group's parser, and the subcommands each action is
    added to with its own arguments (`args.NAME_command` names the action)."""
    group = sub.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def add_actor(parser: argparse.ArgumentParser, doing: str) -> None:
    """`--as`: who is doing it, recorded in the audit trail (`args.actor`)."""
    parser.add_argument("--as", dest="actor", default="cli", help=f"who is {doing} (audited)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of tables (for scripts)"
    )


def add_tenant(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--tenant", "-t", required=required, help="tenant id (every query is scoped to one)"
    )
