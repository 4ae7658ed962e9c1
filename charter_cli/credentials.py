"""`charter credentials add|list|revoke`: connector credentials, encrypted at rest.

Secret values are read from standard input or a hidden prompt, never from the command line
(where `ps` and shell history would see them), and never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from pydantic import ValidationError
from rich.table import Table

from charter.services import credentials
from charter.storage import credential_vault as creds
from charter_cli._arguments import add_actor, add_json, add_tenant
from charter_cli._common import CliError, as_cli_errors, connected, console, print_json
from charter_cli._registration import Subcommands, command, command_group


def register(sub: Subcommands) -> None:
    actions = command_group(sub, "credentials", help="add, list and revoke connector credentials")

    add = command(actions, "add", cmd_add)
    add_tenant(add)
    add.add_argument("--connector", required=True, help="e.g. demo-bank, demo-ads")
    add.add_argument("--scope", required=True, choices=["read", "write"])
    add.add_argument("--kind", default="api_key", choices=["api_key", "oauth"])
    add.add_argument("--label", default="", help="a human description (not secret)")
    add_actor(add, "adding it")

    lst = command(actions, "list", cmd_list)
    add_tenant(lst)
    lst.add_argument("--all", action="store_true", help="include revoked credentials")
    add_json(lst)

    revoke = command(actions, "revoke", cmd_revoke)
    add_tenant(revoke)
    revoke.add_argument("credential_id")
    add_actor(revoke, "revoking it")


def read_secret(kind: str) -> creds.CredentialSecret:
    if sys.stdin.isatty():
        if kind == "api_key":
            raw = getpass.getpass("API key (hidden): ")
        else:
            raw = getpass.getpass("OAuth credential as JSON (hidden): ")
    else:
        raw = sys.stdin.read()
    raw = raw.strip()
    if not raw:
        raise CliError("no secret given on standard input")
    try:
        if kind == "api_key":
            return creds.CredentialSecret(api_key=raw)
        data = json.loads(raw)
        if not isinstance(data, dict) or "api_key" in data:
            raise CliError("an OAuth credential is a JSON object with access_token")
        return creds.CredentialSecret.model_validate(data)
    except (ValueError, ValidationError):
        # The validation message could quote the input: say what is wrong, not what was given.
        raise CliError(f"not a valid {kind} credential") from None


async def cmd_add(args: argparse.Namespace) -> int:
    """store a credential (secret from stdin or a hidden prompt)

    Store a connector credential, envelope-encrypted. An API key is read as one line; an
    OAuth credential as JSON {"access_token": ..., "refresh_token": ..., "expires_at":
    "<ISO 8601>"}. Read and write credentials are separate records.
    """
    secret = read_secret(args.kind)
    async with connected(args, temporal=False) as s:
        with as_cli_errors(credentials.UnknownTenantOrConnector):
            info = await credentials.add(
                s.db,
                creds.CredentialVault(s.settings),
                tenant_id=args.tenant,
                connector=args.connector,
                scope=args.scope,
                secret=secret,
                label=args.label,
                member=args.actor,
            )
    console.print(
        f"added {info.credential_id} ({info.connector}, {info.scope}, {info.kind}) "
        f"under key version {info.kek_version}"
    )
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    """list credentials (never their values)

    Secrets are not shown.
    """
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        rows = await creds.list_credentials(conn, args.tenant, include_revoked=args.all)
    if args.json:
        # CredentialInfo holds no secret: ids, connector, scope, kind, label, key version, dates.
        print_json([{**r.model_dump(mode="json"), "status": r.status} for r in rows])
        return 0
    table = Table(title=f"Credentials of {args.tenant}")
    for column in ("id", "connector", "scope", "kind", "label", "key version", "status", "updated"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.credential_id,
            r.connector,
            r.scope,
            r.kind,
            r.label,
            str(r.kek_version or "-"),
            r.status,
            r.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    return 0


async def cmd_revoke(args: argparse.Namespace) -> int:
    """revoke a credential and erase its ciphertext

    Marks the credential revoked and erases its encrypted secret for good.
    """
    async with connected(args, temporal=False) as s:
        with as_cli_errors(creds.CredentialError):
            info = await credentials.revoke(
                s.db, args.tenant, args.credential_id, member=args.actor
            )
    console.print(f"revoked {info.credential_id}; its encrypted secret is erased")
    return 0
