"""`charter temporal setup`: prepare any Temporal server for Charter, idempotently."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from charter.config.settings import ConfigurationError, Settings
from charter.temporal import search_attributes
from charter.temporal.connection import connect
from charter.temporal.namespace import ensure_namespace
from charter_cli._common import console
from charter_cli._registration import Subcommands, command, command_group

#: A namespace created a moment ago becomes usable when the server's namespace cache
#: refreshes (seconds on the dev server); adding attributes waits for it, within a bound.
NEW_NAMESPACE_WAIT = 30.0


def register(sub: Subcommands) -> None:
    temporal_sub = command_group(sub, "temporal", help="prepare a Temporal server for Charter")
    setup = command(temporal_sub, "setup", cmd_temporal_setup)
    setup.add_argument(
        "--create-namespace",
        action="store_true",
        help="create the namespace if it does not exist (self-hosted servers that allow it)",
    )
    setup.add_argument(
        "--retention-days",
        type=int,
        default=30,
        help="history retention of a namespace created now (default 30)",
    )


async def _register_attributes(client: Client, *, wait: float) -> list[str]:
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            return await search_attributes.register(client)
        except RPCError as exc:
            if (
                exc.status != RPCStatusCode.NOT_FOUND
                or asyncio.get_running_loop().time() > deadline
            ):
                raise
        await asyncio.sleep(0.5)


async def cmd_temporal_setup(args: argparse.Namespace) -> int:
    """register Charter's search attributes (and create the namespace where allowed)

    Connects with the standard Temporal configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
    TEMPORAL_API_KEY, TEMPORAL_TLS_*, profiles) and adds the search attributes Charter's runs
    set. Safe to run on every deploy: what exists is kept.
    """
    settings = Settings()
    client = await connect(settings)
    try:
        created = False
        if args.create_namespace:
            created = await ensure_namespace(client, timedelta(days=args.retention_days))
            if created:
                console.print(f"created namespace {client.namespace}")
        added = await _register_attributes(client, wait=NEW_NAMESPACE_WAIT if created else 0.0)
    except search_attributes.SearchAttributeConflict as exc:
        raise ConfigurationError(str(exc)) from None
    except RPCError as exc:
        raise ConfigurationError(
            f"Temporal refused the setup of namespace {client.namespace}: {exc.message} "
            "(on Temporal Cloud, add the search attributes in the Cloud console or with tcld)"
        ) from None
    names = ", ".join(key.name for key in search_attributes.ALL)
    if added:
        console.print(f"registered search attributes in {client.namespace}: {', '.join(added)}")
    else:
        console.print(f"search attributes already present in {client.namespace}: {names}")
    return 0
