"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from temporalio.client import Client

from charter.config.settings import Settings
from charter.stack.embedded import Stack, development, ensure_stack
from charter.storage import Database
from charter.temporal.connection import connect

#: Piped output (CI logs, `| less`) gets 120 columns instead of rich's default 80.
console = Console(
    highlight=False, width=None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 120))
)


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


@contextmanager
def as_cli_errors(*refusals: type[Exception]) -> Iterator[None]:
    """Within: a refusal of these types (a service's, a parser's) is the command's one-line
    error, its message as it is."""
    try:
        yield
    except refusals as exc:
        raise CliError(str(exc)) from None


async def stack_for(args: argparse.Namespace) -> tuple[Settings, Stack]:
    """The stack a command talks to, and its settings: a development command's (keys kept
    in the state directory) when it started or found the embedded servers."""
    settings = Settings()
    stack = await ensure_stack(settings)
    return (development(settings) if stack.embedded else settings), stack


async def admin_dsn(args: argparse.Namespace, commands: str) -> str:
    """The administrator's DSN, for what only the owner role may write (`commands` names
    them in the refusal)."""
    _, stack = await stack_for(args)
    if stack.admin_dsn is None:
        raise CliError(f"{commands} need the administrator's DATABASE_URL")
    return stack.admin_dsn


def stop_on_signals() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets: a server command serves until it is set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@dataclass
class Session:
    settings: Settings
    stack: Stack
    db: Database
    client: Client | None


@asynccontextmanager
async def session(
    settings: Settings, stack: Stack, *, temporal: bool = True
) -> AsyncIterator[Session]:

    db = await Database.connect(stack.app_dsn, max_size=4)
    try:
        client = await connect(settings, stack.temporal_address) if temporal else None
        yield Session(settings, stack, db, client)
    finally:
        await db.close()


@asynccontextmanager
async def connected(args: argparse.Namespace, *, temporal: bool = True) -> AsyncIterator[Session]:
    """`session` for one command: the stack it talks to (the embedded one started if need
    be), its database, and Temporal unless `temporal=False`."""
    settings, stack = await stack_for(args)
    async with session(settings, stack, temporal=temporal) as s:
        yield s


def print_json(value: Any) -> None:
    """Plain stdout, no rich markup: pydantic models as their JSON, datetimes in ISO 8601,
    decimals as strings (never floats: amounts keep their cents)."""

    def encode(item: Any) -> Any:
        if isinstance(item, BaseModel):
            return item.model_dump(mode="json")
        if isinstance(item, datetime):
            return item.isoformat()
        return str(item)

    print(json.dumps(value, default=encode, indent=2))
