"""The `charter` CLI called in the test's own process, as its entry point parses and runs it."""

from __future__ import annotations

from charter_cli import build_parser


async def charter(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(await args.func(args))
