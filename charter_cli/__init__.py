"""`charter`: one entry point for operators and founders.

Each command group lives in its own module with a `register(subparsers)` function.
Commands that need the database or Temporal start the embedded stack unless
`DATABASE_URL` / `TEMPORAL_ADDRESS` point elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from importlib import metadata

from rich.markup import escape

from charter.config.settings import Settings
from charter.runtime import logs, telemetry
from charter.runtime.failures import configuration_failure
from charter.runtime.process import exit_now
from charter_cli import (
    actions,
    audit,
    calibration,
    codec,
    connectors,
    constitution,
    credentials,
    demo,
    exceptions,
    keys,
    members,
    rates,
    runs,
    schedules,
    slack,
    stack,
    temporal_setup,
    usage,
    web,
)
from charter_cli._common import CliError, console

GROUPS = [
    stack,
    temporal_setup,
    runs,
    schedules,
    exceptions,
    members,
    constitution,
    audit,
    usage,
    calibration,
    slack,
    web,
    credentials,
    connectors,
    actions,
    keys,
    rates,
    codec,
    demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="charter",
        description="Governed AI agents for a company's money: read, reason, gate, act.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"charter {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def version() -> str:
    try:
        return metadata.version("charter")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tracing = None
    try:
        logs.configure(logging.INFO if args.verbose else logging.WARNING, Settings().log_format)
        tracing = telemetry.configure_tracing("charter-cli")
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except CliError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Configuration the operator can fix (unset, unreachable, refused, unsafe) is one
        # line; anything else is a bug and keeps its traceback.
        problem = configuration_failure(exc)
        if problem is None:
            raise
        console.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)
        return 2
    finally:
        if tracing is not None:
            tracing.shutdown()


def entry() -> None:
    """The `charter` console script: `main()`, then leave without interpreter teardown."""

    exit_now(main())


if __name__ == "__main__":
    entry()
