"""`charter up`, `charter stack start|stop|status`, `charter migrate`."""

from __future__ import annotations

import argparse
import asyncio
import signal

from charter.config.settings import ConfigurationError, Settings, redact_dsn
from charter.stack.background import port_open
from charter.stack.embedded import stop_stack
from charter.storage import migrate
from charter.temporal.connection import configured_address
from charter_cli._arguments import add_json
from charter_cli._common import console, print_json, stack_for
from charter_cli._registration import Subcommands, command, command_group
from worker import run_worker


def register(sub: Subcommands) -> None:
    command(sub, "up", cmd_up)
    stack_sub = command_group(
        sub, "stack", help="manage the embedded PostgreSQL and Temporal servers"
    )
    command(stack_sub, "start", cmd_stack_start)
    command(stack_sub, "stop", cmd_stack_stop)
    add_json(command(stack_sub, "status", cmd_stack_status))
    command(sub, "migrate", cmd_migrate)


def _describe(settings: Settings, temporal: str, admin_dsn: str | None, ui_url: str) -> None:
    console.print(
        f"Temporal   {temporal}  (namespace {settings.temporal_namespace}, "
        f"task queue {settings.task_queue})"
    )
    console.print(f"Temporal UI {ui_url}")
    if admin_dsn is not None:
        console.print(f"PostgreSQL {redact_dsn(admin_dsn)}")


async def cmd_stack_start(args: argparse.Namespace) -> int:
    """start the embedded servers in the background"""
    settings, stack = await stack_for(args)
    _describe(settings, stack.temporal_address, stack.admin_dsn, stack.ui_url)
    console.print("[green]stack is up; migrations applied[/]")
    return 0


async def cmd_migrate(args: argparse.Namespace) -> int:
    """apply database migrations with the administrator's DATABASE_URL (idempotent)

    The only way migrations reach a configured database: workers connect as the application
    role and refuse to start on a database that lacks a migration. CHARTER_APP_DB_PASSWORD,
    when set, becomes charter_app's password.
    """
    settings = Settings()
    if settings.database_url is None:
        raise ConfigurationError(
            "DATABASE_URL (the administrator's DSN) is not set; `charter stack start` "
            "migrates the embedded database"
        )
    password = settings.app_db_password
    applied = await migrate(
        settings.database_url, app_password=password.get_secret_value() if password else None
    )
    where = redact_dsn(settings.database_url)
    if applied:
        console.print(f"applied {', '.join(applied)} to {where}")
    else:
        console.print(f"{where} is up to date")
    return 0


def cmd_stack_stop(args: argparse.Namespace) -> int:
    """stop the embedded servers"""
    stopped = stop_stack(Settings().state_dir)
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_stack_status(args: argparse.Namespace) -> int:
    """show where the services are"""
    settings = Settings()
    configured = configured_address(settings)
    temporal = configured or f"127.0.0.1:{settings.temporal_port}"
    embedded_pg = (settings.state_dir / "pgdata" / "postmaster.pid").exists()
    up = configured is not None or port_open(settings.temporal_port)
    if args.json:
        # The DSN without its password, like the text.
        print_json(
            {
                "temporal": {"address": temporal, "configured": configured is not None, "up": up},
                "postgres": {
                    "dsn": redact_dsn(settings.database_url),
                    "configured": True,
                    "up": None,  # not probed, like the text
                }
                if settings.database_url
                else {"dsn": None, "configured": False, "up": embedded_pg},
            }
        )
        return 0
    console.print(f"Temporal   {temporal}: {'up' if up else 'down'}")
    if settings.database_url:
        console.print(f"PostgreSQL {redact_dsn(settings.database_url)} (configured)")
    else:
        console.print(f"PostgreSQL embedded: {'up' if embedded_pg else 'down'}")
    return 0


async def cmd_up(args: argparse.Namespace) -> int:
    """start the embedded stack and a worker, and keep them up (Ctrl-C stops the worker)

    Start PostgreSQL and Temporal (unless configured elsewhere), apply migrations, and run a
    worker in the foreground.
    """
    settings, stack = await stack_for(args)
    _describe(settings, stack.temporal_address, stack.admin_dsn, stack.ui_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print(
        "[green]worker running[/]; Ctrl-C to stop (the servers keep running; "
        "`charter stack stop` stops them)"
    )
    await run_worker(settings, stack.temporal_address, stack.app_dsn, stop)
    return 0
