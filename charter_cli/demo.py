"""`charter demo`: seed the demo companies and tell the story end to end."""

from __future__ import annotations

import argparse
import time

from charter_cli._common import console, stack_for
from charter_cli._registration import Subcommands, command
from charter_cli.story import run_demo


def register(sub: Subcommands) -> None:
    command(sub, "demo", cmd_demo)


async def cmd_demo(args: argparse.Namespace) -> int:
    """run the demo: two companies, their agents, exceptions, an amendment, the audit

    Starts the embedded stack if needed (it keeps running afterwards so the Temporal UI stays
    inspectable), resets the demo companies' books and runs the story.
    """

    settings, stack = await stack_for(args)
    started = time.monotonic()
    reports = await run_demo(console, settings, stack)
    console.print(f"\nDemo finished in {time.monotonic() - started:.1f}s.")
    return 0 if all(r.ok for r in reports) else 1
