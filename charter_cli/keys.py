"""`charter keys rotate|retire|list|generate`: key-encryption keys and payload-codec keys."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from rich.table import Table

from charter.config.settings import Settings
from charter.crypto import CryptoError
from charter.crypto.codec import default_payload_keyring
from charter.crypto.fresh import fresh_secrets
from charter.crypto.keyring import keyring_file
from charter.services.credentials import kek_usage, rewrap_all
from charter.storage import credential_vault as creds
from charter_cli._arguments import add_json
from charter_cli._common import CliError, as_cli_errors, connected, console, print_json
from charter_cli._registration import Subcommands, command, command_group


def register(sub: Subcommands) -> None:
    actions = command_group(sub, "keys", help="rotate, retire and list encryption keys")

    rotate = command(actions, "rotate", cmd_rotate)
    rotate.add_argument("--payload", action="store_true", help="rotate the payload-codec key")
    rotate.add_argument(
        "--rewrap-only",
        action="store_true",
        help="only rewrap under the current version (e.g. after adding one to CHARTER_KEK)",
    )

    retire = command(actions, "retire", cmd_retire)
    retire.add_argument("version", help="KEK version number, or payload key id with --payload")
    retire.add_argument("--payload", action="store_true", help="retire a payload-codec key")

    add_json(command(actions, "list", cmd_list))

    generate = command(actions, "generate", cmd_generate)
    generate.add_argument(
        "--dir", type=Path, default=None, help="write each secret to a file here (mode 0600)"
    )
    generate.add_argument("--postgres-host", default="postgres", help="host in the two DSNs")
    generate.add_argument("--database", default="charter", help="database in the two DSNs")


async def cmd_rotate(args: argparse.Namespace) -> int:
    """new key version; rewrap every credential's data key under it

    Creates a new key-encryption key version and rewraps every data key under it
    (ciphertexts are not touched and no secret is exposed). With --payload, creates a new
    payload-codec key instead; older ones keep decoding old payloads.
    """
    if args.payload:
        settings = Settings()
        if settings.payload_keys is not None:
            raise CliError("CHARTER_PAYLOAD_KEYS is set: rotate by adding a key id to it")
        new_id = keyring_file(settings).rotate_payload_key()
        console.print(f"payload key {new_id} is now current; restart workers to encrypt with it")
        return 0
    async with connected(args, temporal=False) as s:
        vault = creds.CredentialVault(s.settings)
        with as_cli_errors(CryptoError):
            if not args.rewrap_only:
                version = await asyncio.to_thread(vault.keys.rotate)
                console.print(f"key-encryption key version {version} is now current")
            rewrapped, failed = await rewrap_all(s.db, vault)
    console.print(f"rewrapped {rewrapped} data keys under version {vault.keys.current_version()}")
    if failed:
        raise CliError(
            f"{len(failed)} credentials could not be rewrapped (tampered, or their key version is "
            f"gone): {', '.join(failed)}; revoke and re-add them"
        )
    return 0


async def cmd_retire(args: argparse.Namespace) -> int:
    """destroy an old key version once nothing uses it

    Refuses while any credential's data key is still wrapped by the version.
    """
    if args.payload:
        with as_cli_errors(CryptoError):
            keyring_file(Settings()).retire_payload_key(args.version)
        console.print(f"payload key {args.version} retired: payloads it encrypted no longer decode")
        return 0
    try:
        version = int(args.version)
    except ValueError:
        raise CliError("a key-encryption key version is a number") from None
    async with connected(args, temporal=False) as s:
        vault = creds.CredentialVault(s.settings)
        in_use = (await kek_usage(s.db)).get(version, 0)
        if in_use:
            raise CliError(
                f"version {version} still wraps {in_use} data keys: run `charter keys rotate` first"
            )
        with as_cli_errors(CryptoError):
            await asyncio.to_thread(vault.keys.retire, version)
    console.print(f"key-encryption key version {version} retired")
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    """key versions, their status and use"""
    async with connected(args, temporal=False) as s:
        vault = creds.CredentialVault(s.settings)
        used = await kek_usage(s.db)
        versions = await asyncio.to_thread(vault.keys.versions)
    keyring = default_payload_keyring(s.settings)
    if args.json:
        # Versions and ids only: no key material.
        print_json(
            {
                "provider": vault.keys.name,
                "kek_versions": [
                    {
                        "version": v.version,
                        "status": v.status,
                        "created_at": v.created_at,
                        "credentials": used.get(v.version, 0),
                    }
                    for v in versions
                ],
                "payload_keys": [
                    {"key_id": k, "current": k == keyring.current} for k in keyring.key_ids()
                ],
            }
        )
        return 0
    table = Table(title=f"Key-encryption keys ({vault.keys.name} provider)")
    for column in ("version", "status", "created", "credentials"):
        table.add_column(column)
    for v in versions:
        created = v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "-"
        table.add_row(str(v.version), v.status, created, str(used.get(v.version, 0)))
    console.print(table)
    console.print(
        "Payload keys: "
        + ", ".join(f"{k}{' (current)' if k == keyring.current else ''}" for k in keyring.key_ids())
    )
    return 0


def _write_new(path: Path, value: str) -> bool:
    """Write `value` to a new file, mode 0600; False (untouched) if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return True


def cmd_generate(args: argparse.Namespace) -> int:
    """make a deployment's secrets once: payload keys, KEK, tokens, database passwords

    Every process of a deployment needs the same keys. With --dir, each secret is written to
    a file of its own (mode 0600; existing files are kept, so running it again changes
    nothing), ready to mount as Docker or Kubernetes secrets and read through the
    CHARTER_*_FILE variables. Without, they are printed as variables for an env file.
    """
    values = fresh_secrets(args.postgres_host, args.database)
    if args.dir is None:
        for name, value in values.items():
            print(f"{_variable(name)}={value}")
        return 0
    args.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept = [name for name, value in values.items() if not _write_new(args.dir / name, value)]
    made = [name for name in values if name not in kept]
    console.print(f"secrets in {args.dir}: made {', '.join(made) or 'none'}")
    if kept:
        console.print(f"kept (already there): {', '.join(kept)}")
    return 0


#: Secrets whose variable is not `CHARTER_<NAME>`.
_VARIABLES = {"database_url": "DATABASE_URL", "postgres_password": "POSTGRES_PASSWORD"}


def _variable(name: str) -> str:
    return _VARIABLES.get(name, f"CHARTER_{name.upper()}")
