"""Constitution versions: immutable rows, one per (tenant, version), with a content hash."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict

from charter.governance.constitution import content_hash
from charter.storage import audit_trail
from schemas import Constitution, ConstitutionDocument


class ConstitutionNotFound(LookupError):
    pass


class VersionInfo(BaseModel):
    """One line of a tenant's constitution history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    content_hash: str
    source: str
    created_by: str
    note: str
    created_at: datetime
    rules: int
    made_by: str
    """`owner` (written by the owner role) or `amendment` (from an approval, proven by it)."""


async def history(conn: asyncpg.Connection, tenant_id: str) -> list[VersionInfo]:
    rows = await conn.fetch(
        "SELECT version, content_hash, source, created_by, note, created_at, made_by, "
        "jsonb_array_length(document->'rules') AS rules FROM charter.constitutions "
        "WHERE tenant_id = $1 ORDER BY version",
        tenant_id,
    )
    return [VersionInfo(**dict(r)) for r in rows]


def _row_to_model(row: asyncpg.Record) -> Constitution:
    return Constitution(
        tenant_id=row["tenant_id"],
        version=row["version"],
        content_hash=row["content_hash"],
        document=ConstitutionDocument.model_validate_json(row["document"]),
    )


async def get(conn: asyncpg.Connection, tenant_id: str, version: int | None = None) -> Constitution:
    if version is None:
        row = await conn.fetchrow(
            "SELECT tenant_id, version, content_hash, document::text AS document "
            "FROM charter.constitutions WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1",
            tenant_id,
        )
    else:
        row = await conn.fetchrow(
            "SELECT tenant_id, version, content_hash, document::text AS document "
            "FROM charter.constitutions WHERE tenant_id = $1 AND version = $2",
            tenant_id,
            version,
        )
    if row is None:
        which = "any version" if version is None else f"version {version}"
        raise ConstitutionNotFound(f"tenant {tenant_id!r} has no constitution ({which})")
    constitution = _row_to_model(row)
    if content_hash(constitution.document) != constitution.content_hash:
        raise RuntimeError(
            f"constitution v{constitution.version} of {tenant_id!r} does not match its hash"
        )
    return constitution


async def lock_versions(conn: asyncpg.Connection, tenant_id: str) -> None:
    """Serialise new versions of a tenant's constitution until the transaction ends. Take it
    before reading a version that a new one is derived from (an amendment), so that no
    version saved in between is silently reverted."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('constitution:' || $1))", tenant_id)


async def save(
    conn: asyncpg.Connection,
    tenant_id: str,
    document: ConstitutionDocument,
    *,
    source: str,
    created_by: str,
    note: str = "",
    if_changed: bool = False,
    amendment: bool = False,
) -> Constitution:
    """Store a new version (the next number). With `if_changed`, reuse an identical latest.

    `conn` is the owner role's (`member_keys.owner_tenant`) for a version an owner makes;
    with `amendment`, the application role's, for the version an approval's amendment makes.
    """
    # Serialise version numbering per tenant; the audit head lock does the same job for
    # the entry we append below, so take it first to keep one lock order everywhere.
    await lock_versions(conn, tenant_id)
    digest = content_hash(document)
    latest = await conn.fetchrow(
        "SELECT version, content_hash FROM charter.constitutions WHERE tenant_id = $1 "
        "ORDER BY version DESC LIMIT 1",
        tenant_id,
    )
    if if_changed and latest is not None and latest["content_hash"] == digest:
        return await get(conn, tenant_id, latest["version"])
    version = (latest["version"] if latest else 0) + 1
    # The owner inserts; the application role may only add an amendment, through the
    # definer function that marks the version as one (act verifies it against its decision).
    insert = (
        "SELECT charter.save_amendment_version($1, $2, $3, $4::jsonb, $5, $6, $7)"
        if amendment
        else "INSERT INTO charter.constitutions (tenant_id, version, content_hash, document, "
        "source, created_by, note) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)"
    )
    await conn.execute(
        insert,
        tenant_id,
        version,
        digest,
        json.dumps(document.model_dump(mode="json", exclude_none=True)),
        source,
        created_by,
        note,
    )
    await audit_trail.append(
        conn,
        tenant_id,
        "constitution_version",
        {
            "version": version,
            "content_hash": digest,
            "note": note,
            "document": document.model_dump(mode="json", exclude_none=True),
        },
        actor=created_by,
    )
    return Constitution(
        tenant_id=tenant_id, version=version, content_hash=digest, document=document
    )
