"""`charter connectors add|list|remove`: which provider serves each capability of a tenant.

Settings are identifiers and addresses (`--set key=value`), never secrets: the provider's
API keys or tokens go in with `charter credentials add`, a read and a write record apart.
"""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg
from rich.table import Table

from charter.connectors import ConnectorError, registry
from charter.crypto.envelope import Scope
from charter.storage import audit_trail
from charter.storage import connector_config as config
from charter.storage import credential_vault as creds
from charter_cli._common import (
    CliError,
    add_json,
    add_tenant,
    console,
    print_json,
    session,
    stack_for,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("connectors", help="configure which provider serves each capability")
    actions = group.add_subparsers(dest="connectors_command", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="serve a capability with a provider (replaces the one configured)",
        description="Serve a capability (bank, bills, payments) with a provider. Providers: "
        + ", ".join(f"{p} ({', '.join(sorted(c))})" for p, c in sorted(registry.PROVIDERS.items()))
        + ". Credentials are added separately with `charter credentials add`.",
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
    add.add_argument("--as", dest="actor", default="cli", help="who is configuring it (audited)")
    add.set_defaults(func=cmd_add)

    lst = actions.add_parser("list", help="the provider of each capability, and its credentials")
    add_tenant(lst)
    add_json(lst)
    lst.set_defaults(func=cmd_list)

    remove = actions.add_parser(
        "remove", help="hand a capability back to the demo books (the default)"
    )
    add_tenant(remove)
    remove.add_argument("--capability", required=True, choices=config.CAPABILITIES)
    remove.add_argument("--as", dest="actor", default="cli", help="who is removing it (audited)")
    remove.set_defaults(func=cmd_remove)


def _settings(pairs: list[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--set takes KEY=VALUE, not {pair!r}")
        settings[key] = value
    return settings


async def cmd_add(args: argparse.Namespace) -> int:
    try:
        settings = registry.validated_settings(
            args.provider, args.capability, _settings(args.settings)
        )
    except ConnectorError as exc:
        raise CliError(str(exc)) from None
    stack_settings, stack = await stack_for(args)
    async with session(stack_settings, stack, temporal=False) as s:
        try:
            async with s.db.tenant(args.tenant) as conn:
                configured = await config.configure(
                    conn,
                    tenant_id=args.tenant,
                    capability=args.capability,
                    provider=args.provider,
                    settings=settings,
                    created_by=args.actor,
                )
                await audit_trail.append(
                    conn,
                    args.tenant,
                    "connector_configured",
                    configured.model_dump(
                        mode="json", include={"capability", "provider", "settings"}
                    ),
                    actor=f"member:{args.actor}",
                )
                missing = await _missing_credentials(conn, args.tenant, args.provider)
        except Exception as exc:
            if type(exc).__name__ in ("CheckViolationError", "ForeignKeyViolationError"):
                raise CliError(f"refused: unknown tenant {args.tenant!r}") from None
            raise
    console.print(f"{args.capability} of {args.tenant} is now served by {args.provider}")
    if missing:
        console.print(
            f"[yellow]no active {' or '.join(missing)} credential for {args.provider} yet:[/] "
            f"add it with `charter credentials add --tenant {args.tenant} "
            f"--connector {args.provider} --scope ...`"
        )
    return 0


async def _missing_credentials(conn: asyncpg.Connection, tenant: str, provider: str) -> list[Scope]:
    if provider == config.DEFAULT_PROVIDER:
        return []  # the demo books' own credentials are seeded with the demo company
    scopes: tuple[Scope, ...] = ("read", "write")
    return [s for s in scopes if await creds.active_id(conn, tenant, provider, s) is None]


async def cmd_list(args: argparse.Namespace) -> int:
    stack_settings, stack = await stack_for(args)
    async with (
        session(stack_settings, stack, temporal=False) as s,
        s.db.tenant(args.tenant) as conn,
    ):
        configured = {c.capability: c for c in await config.configured(conn, args.tenant)}
        rows = []
        listing: list[dict[str, Any]] = []
        for capability in config.CAPABILITIES:
            c = configured.get(capability)
            provider = c.provider if c else config.DEFAULT_PROVIDER
            missing = await _missing_credentials(conn, args.tenant, provider)
            listing.append(
                {
                    "capability": capability,
                    "provider": provider,
                    "default": c is None,
                    # Provider settings are never secrets (`add` says so): ids and options.
                    "settings": dict(sorted(c.settings.items())) if c else {},
                    "missing_credentials": missing,
                    "configured_by": c.created_by if c else None,
                    "configured_at": c.created_at if c else None,
                }
            )
            rows.append(
                (
                    capability,
                    provider if c else f"{provider} (default)",
                    ", ".join(f"{k}={v}" for k, v in sorted(c.settings.items())) if c else "-",
                    "missing " + ", ".join(missing) if missing else "read, write",
                    f"{c.created_by} {c.created_at:%Y-%m-%d %H:%M}" if c and c.created_at else "-",
                )
            )
    if args.json:
        print_json(listing)
        return 0
    table = Table(title=f"Connectors of {args.tenant}")
    for column in ("capability", "provider", "settings", "credentials", "configured"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


async def cmd_remove(args: argparse.Namespace) -> int:
    stack_settings, stack = await stack_for(args)
    async with (
        session(stack_settings, stack, temporal=False) as s,
        s.db.tenant(args.tenant) as conn,
    ):
        removed = await config.remove(conn, args.tenant, args.capability)
        if removed is not None:
            await audit_trail.append(
                conn,
                args.tenant,
                "connector_removed",
                {"capability": removed.capability, "provider": removed.provider},
                actor=f"member:{args.actor}",
            )
    if removed is None:
        raise CliError(f"{args.capability} of {args.tenant} has no connector configured")
    console.print(
        f"{args.capability} of {args.tenant} is served by the demo books again "
        f"(was {removed.provider}); its credentials are kept until revoked"
    )
    return 0
