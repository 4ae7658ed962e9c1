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

from charter.runtime import redaction
from charter.runtime.process import exit_now
from charter_cli import (
    audit,
    calibration,
    codec,
    constitution,
    credentials,
    demo,
    exceptions,
    keys,
    members,
    runs,
    slack,
    stack,
    usage,
)
from charter_cli._common import CliError, console

GROUPS = [
    stack,
    runs,
    exceptions,
    members,
    constitution,
    audit,
    usage,
    calibration,
    slack,
    credentials,
    keys,
    codec,
    demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="charter",
        description="Governed AI agents for a company's money: read, reason, gate, act.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redaction.install()
    try:
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except CliError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    """The `charter` console script: `main()`, then leave without interpreter teardown."""

    exit_now(main())


if __name__ == "__main__":
    entry()
