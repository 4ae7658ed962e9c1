"""Connector credentials given and taken back: each stored or erased with its audit entry.

The secret is envelope-encrypted before it reaches the database (`credential_vault`), and the
audit entry names the record, never its value. Read and write credentials are separate
records, so each is added, and revoked, on its own.
"""

from __future__ import annotations

import asyncpg

from charter.crypto.envelope import Scope
from charter.storage import Database, audit_trail
from charter.storage import credential_vault as creds

#: What an audit entry says of a credential added: who it is for and under which key.
_ADDED = {"credential_id", "connector", "scope", "kind", "label", "kek_version"}


class UnknownTenantOrConnector(Exception):
    """The database refused the record: no such tenant, or a connector name it does not take."""


async def add(
    db: Database,
    vault: creds.CredentialVault,
    *,
    tenant_id: str,
    connector: str,
    scope: Scope,
    secret: creds.CredentialSecret,
    label: str,
    member: str,
) -> creds.CredentialInfo:
    """Store a credential for `connector` and `scope`, added by `member`: `credential_added`."""
    try:
        async with db.tenant(tenant_id) as conn:
            info = await creds.add(
                conn,
                vault.keys,
                tenant_id=tenant_id,
                connector=connector,
                scope=scope,
                secret=secret,
                label=label,
                created_by=member,
            )
            await audit_trail.append(
                conn,
                tenant_id,
                "credential_added",
                info.model_dump(mode="json", include=_ADDED),
                actor=f"member:{member}",
            )
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError):
        raise UnknownTenantOrConnector(
            f"refused: unknown tenant {tenant_id!r} or invalid connector name"
        ) from None
    return info


async def revoke(
    db: Database, tenant_id: str, credential_id: str, *, member: str
) -> creds.CredentialInfo:
    """Revoke a credential and erase its ciphertext for good: `credential_revoked`.
    CredentialError if there is no such credential, or it is revoked already."""
    async with db.tenant(tenant_id) as conn:
        info = await creds.revoke(conn, tenant_id, credential_id)
        await audit_trail.append(
            conn,
            tenant_id,
            "credential_revoked",
            {
                "credential_id": info.credential_id,
                "connector": info.connector,
                "scope": info.scope,
            },
            actor=f"member:{member}",
        )
    return info


async def rewrap_all(db: Database, vault: creds.CredentialVault) -> tuple[int, list[str]]:
    """Rewrap every tenant's data keys under the current key-encryption key, each tenant in
    one transaction with its `credentials_rewrapped` entry; how many moved and which failed
    (as tenant/credential)."""
    done, failed = 0, []
    for tenant in await db.tenant_ids():
        async with db.tenant(tenant) as conn:
            report = await creds.rewrap_tenant(conn, vault.keys, tenant)
            if report.rewrapped:
                await audit_trail.append(
                    conn,
                    tenant,
                    "credentials_rewrapped",
                    {
                        "credential_ids": report.rewrapped,
                        "kek_version": vault.keys.current_version(),
                        "failed": report.failed,
                    },
                    actor="operator:cli",
                )
        done += len(report.rewrapped)
        failed += [f"{tenant}/{cid}" for cid in report.failed]
    return done, failed


async def kek_usage(db: Database) -> dict[int, int]:
    """Credentials per key-encryption key version, over every tenant."""
    return await db.summed_over_tenants(creds.kek_versions_in_use)
