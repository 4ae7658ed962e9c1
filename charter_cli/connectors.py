"""`charter connectors add|list|remove`: which provider serves each capability of a tenant.

Settings are identifiers and addresses (`--set key=value`), never secrets: the provider's
API keys or tokens go in with `charter credentials add`, a read and a write record apart.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from charter.connectors import ConnectorError, registry
from charter.services import connector_setup
from charter.services.connector_setup import Served
from charter.storage import connector_config as config
from charter_cli._arguments import add_actor, add_json, add_tenant
from charter_cli._common import CliError, as_cli_errors, connected, console, print_json
from charter_cli._registration import Subcommands, command, command_group


def register(sub: Subcommands) -> None:
    actions = command_group(
        sub, "connectors", help="configure which provider serves each capability"
    )

    add = command(actions, "add", cmd_add)
    add.description = (
        f"{add.description} Providers: "
        + ", ".join(f"{p} ({', '.join(sorted(c))})" for p, c in sorted(registry.PROVIDERS.items()))
        + ". Credentials are added separately with `charter credentials add`."
    )
    add_tenant(add)
    add.add_argument("--capability", required=True, choices=config.CAPABILITIES)
    add.add_argument("--provider", required=True, choices=sorted(registry.PROVIDERS))
    add.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a provider setting, e.g. organization_id=... (repeatable; never a secret)",
    )
    add_actor(add, "configuring it")

    lst = command(actions, "list", cmd_list)
    add_tenant(lst)
    add_json(lst)

    remove = command(actions, "remove", cmd_remove)
    add_tenant(remove)
    remove.add_argument("--capability", required=True, choices=config.CAPABILITIES)
    add_actor(remove, "removing it")


def _settings(pairs: list[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--set takes KEY=VALUE, not {pair!r}")
        settings[key] = value
    return settings


async def cmd_add(args: argparse.Namespace) -> int:
    """serve a capability with a provider (replaces the one configured)

    Serve a capability (bank, bills, payments) with a provider.
    """
    with as_cli_errors(ConnectorError):
        settings = registry.validated_settings(
            args.provider, args.capability, _settings(args.settings)
        )
    async with connected(args, temporal=False) as s:
        with as_cli_errors(connector_setup.UnknownTenant):
            missing = await connector_setup.configure(
                s.db,
                tenant_id=args.tenant,
                capability=args.capability,
                provider=args.provider,
                settings=settings,
                member=args.actor,
            )
    console.print(f"{args.capability} of {args.tenant} is now served by {args.provider}")
    if missing:
        console.print(
            f"[yellow]no active {' or '.join(missing)} credential for {args.provider} yet:[/] "
            f"add it with `charter credentials add --tenant {args.tenant} "
            f"--connector {args.provider} --scope ...`"
        )
    return 0


def _listed(served: Served) -> dict[str, Any]:
    c = served.configured
    return {
        "capability": served.capability,
        "provider": served.provider,
        "default": c is None,
        # Provider settings are never secrets (`add` says so): ids and options.
        "settings": dict(sorted(c.settings.items())) if c else {},
        "missing_credentials": served.missing_credentials,
        "configured_by": c.created_by if c else None,
        "configured_at": c.created_at if c else None,
    }


def _row(served: Served) -> tuple[str, ...]:
    c, missing = served.configured, served.missing_credentials
    return (
        served.capability,
        served.provider if c else f"{served.provider} (default)",
        ", ".join(f"{k}={v}" for k, v in sorted(c.settings.items())) if c else "-",
        "missing " + ", ".join(missing) if missing else "read, write",
        f"{c.created_by} {c.created_at:%Y-%m-%d %H:%M}" if c and c.created_at else "-",
    )


async def cmd_list(args: argparse.Namespace) -> int:
    """the provider of each capability, and its credentials"""
    async with connected(args, temporal=False) as s:
        served = await connector_setup.serving(s.db, args.tenant)
    if args.json:
        print_json([_listed(capability) for capability in served])
        return 0
    table = Table(title=f"Connectors of {args.tenant}")
    for column in ("capability", "provider", "settings", "credentials", "configured"):
        table.add_column(column)
    for capability in served:
        table.add_row(*_row(capability))
    console.print(table)
    return 0


async def cmd_remove(args: argparse.Namespace) -> int:
    """hand a capability back to the demo books (the default)"""
    async with connected(args, temporal=False) as s:
        with as_cli_errors(connector_setup.NotConfigured):
            removed = await connector_setup.remove(
                s.db, args.tenant, args.capability, member=args.actor
            )
    console.print(
        f"{args.capability} of {args.tenant} is served by the demo books again "
        f"(was {removed.provider}); its credentials are kept until revoked"
    )
    return 0
