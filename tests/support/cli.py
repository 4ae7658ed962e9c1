"""The `charter` CLI in the test's own process.

A child process per command costs seconds of imports, so a test about what a command does
runs it here. `charter` calls the command's function as `main` does and lets its errors
out; `run_main` runs `charter_cli.main` itself (its one-line errors, its exit code, its
output) as a user sees it. Tests about the process itself (exit on a signal, what a fresh
interpreter imports, the console script) start a child with `tests.support.processes`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from charter_cli import build_parser, main
from charter_cli._common import console
from tests.support.processes import configures

#: The width a user's terminal gives the tables (children got COLUMNS=200).
WIDTH = 200


async def charter(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(await args.func(args))


@dataclass(frozen=True)
class Ran:
    """What a command left: its exit code and what it printed."""

    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        """Standard output and standard error together, as a terminal shows them."""
        return self.out + self.err


async def run_main(*argv: str, env: Mapping[str, str | None] | None = None) -> Ran:
    """`charter ARGV` through `charter_cli.main`, with `env` set (None: unset) for its
    length. `main` runs its own event loop, so it runs in a thread of its own."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(env or {}),
        _root_logger_kept(),
        _console_width(WIDTH),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        code = await asyncio.to_thread(_exit_code, list(argv))
    return Ran(code, out.getvalue(), err.getvalue())


def operator_env(home: Path, **values: str) -> dict[str, str | None]:
    """For `run_main`, what `processes.clean_env` gives a child: none of this process's
    Charter or Temporal configuration, HOME at `home` (no Temporal profile of the
    developer's), and `values`."""
    unset: dict[str, str | None] = {name: None for name in os.environ if configures(name)}
    return {**unset, "HOME": str(home), **values}


def _exit_code(argv: Sequence[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse: --help, or a usage error
        return exc.code if isinstance(exc.code, int) else 1


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        yield


@contextmanager
def _root_logger_kept() -> Iterator[None]:
    """`main` configures logging for a process: the test session's handlers come back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


@contextmanager
def _console_width(width: int) -> Iterator[None]:
    before = console.width
    console.width = width
    try:
        yield
    finally:
        console.width = before
