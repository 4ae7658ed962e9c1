"""How every command module's `register(sub)` declares its commands: a group, and each
command with the function that runs it, whose docstring is its help.

Each command still names its own arguments where it registers them (the shared ones are in
`charter_cli._arguments`); this holds only what is the same for all of them.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import TypeAlias

#: What `register(sub)` of every command module gets: `charter`'s subcommands.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: What runs a command: `args` in, an exit code (or a coroutine giving one) out.
Command: TypeAlias = Callable[[argparse.Namespace], object]


class UndocumentedCommand(Exception):
    """A command function without a docstring: it would have no `--help`."""


def command_group(
    sub: Subcommands, name: str, *, help: str, description: str | None = None
) -> Subcommands:
    """`charter NAME ACTION ...`: the group's parser, and the subcommands each action is
    added to with its own arguments (`args.NAME_command` names the action)."""
    group = sub.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def command(
    sub: Subcommands, name: str, func: Command, *, help: str | None = None, **defaults: object
) -> argparse.ArgumentParser:
    """`NAME`, run by `func`. Its help is the first paragraph of `func`'s docstring and its
    description the rest (none when there is no more); a function that serves several
    commands is given each one's `help` instead. `defaults` go into `args` as they are."""
    description = None
    if help is None:
        doc = inspect.getdoc(func)
        if doc is None:
            raise UndocumentedCommand(f"{name}: {func.__qualname__} has no docstring")
        first, _, rest = doc.partition("\n\n")
        # One line each, as argparse would fold them anyway.
        help, description = " ".join(first.split()), " ".join(rest.split()) or None
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func, **defaults)
    return parser
