"""Per-tenant connector configuration: which provider serves which capability.

Settings are identifiers and addresses, never secrets (those are in `credentials`). A
capability without a row is served by the demo books.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal, get_args

import asyncpg
from pydantic import BaseModel, ConfigDict

Capability = Literal["bank", "bills", "payments"]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
DEFAULT_PROVIDER = "demo-books"


class ConnectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    capability: Capability
    provider: str
    settings: dict[str, str] = {}
    created_by: str = "default"
    created_at: datetime | None = None


_COLUMNS = "tenant_id, capability, provider, settings, created_by, created_at"


def _config(row: asyncpg.Record) -> ConnectorConfig:
    data = dict(row)
    data["settings"] = json.loads(data["settings"])
    return ConnectorConfig(**data)


async def configure(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    capability: Capability,
    provider: str,
    settings: dict[str, str],
    created_by: str,
) -> ConnectorConfig:
    """Set (or replace) the provider of one capability."""
    row = await conn.fetchrow(
        "INSERT INTO charter.connectors (tenant_id, capability, provider, settings, created_by) "
        "VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (tenant_id, capability) DO UPDATE SET "
        "provider = EXCLUDED.provider, settings = EXCLUDED.settings, created_by = "
        f"EXCLUDED.created_by, created_at = now() RETURNING {_COLUMNS}",
        tenant_id,
        capability,
        provider,
        json.dumps(settings, sort_keys=True),
        created_by,
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return _config(row)


async def configured(conn: asyncpg.Connection, tenant_id: str) -> list[ConnectorConfig]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM charter.connectors WHERE tenant_id = $1 ORDER BY capability",
        tenant_id,
    )
    return [_config(r) for r in rows]


async def remove(
    conn: asyncpg.Connection, tenant_id: str, capability: Capability
) -> ConnectorConfig | None:
    row = await conn.fetchrow(
        f"DELETE FROM charter.connectors WHERE tenant_id = $1 AND capability = $2 "
        f"RETURNING {_COLUMNS}",
        tenant_id,
        capability,
    )
    return _config(row) if row is not None else None


async def serving(
    conn: asyncpg.Connection, tenant_id: str, capability: Capability
) -> ConnectorConfig:
    """The configured provider of `capability`, or the demo books."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM charter.connectors WHERE tenant_id = $1 AND capability = $2",
        tenant_id,
        capability,
    )
    if row is None:
        return ConnectorConfig(
            tenant_id=tenant_id, capability=capability, provider=DEFAULT_PROVIDER
        )
    return _config(row)
