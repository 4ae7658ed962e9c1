"""Adopting a constitution: validate the YAML, check the owner, store a new version.

Only an owner can make law: a deny rule is lifted by a new version applied by an owner,
never by an approval, and written as the owner database role. Applying a document identical to the latest version creates nothing.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from charter.governance.backtest import backtest
from charter.governance.constitution import content_hash, load_yaml
from charter.storage import Database, audit_trail, constitution_versions, roster
from charter.storage.member_keys import owner_tenant
from schemas import Constitution
from schemas.backtest import BacktestReport


class NotAnOwner(PermissionError):
    """The member applying a constitution is not an active owner of the tenant."""


class Adopted(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    constitution: Constitution
    created: bool
    """False when the document was identical to the latest version."""


async def adopt(admin_dsn: str, tenant_id: str, text: str, *, by: str, note: str = "") -> Adopted:
    """Store `text` as the next version, as the owner role on the administrator connection:
    the application role reads the law, it never writes it."""
    document = load_yaml(text)  # raises ConstitutionError naming every problem; nothing stored
    async with owner_tenant(admin_dsn, tenant_id) as conn:
        if not await roster.is_owner(conn, tenant_id, by):
            raise NotAnOwner(
                f"{by!r} is not an active owner of tenant {tenant_id!r}; only an owner can "
                "apply a constitution"
            )
        latest = await conn.fetchval(
            "SELECT max(version) FROM charter.constitutions WHERE tenant_id = $1", tenant_id
        )
        saved = await constitution_versions.save(
            conn,
            tenant_id,
            document,
            source="charter constitution apply",
            created_by=f"member:{by}",
            note=note or f"Applied by {by}",
            if_changed=True,
        )
    return Adopted(constitution=saved, created=saved.version != latest)


async def candidate(db: Database, tenant_id: str, text: str) -> Constitution:
    """A validated, unsaved constitution to backtest, numbered as the next version."""
    document = load_yaml(text)
    async with db.tenant(tenant_id) as conn:
        latest = await conn.fetchval(
            "SELECT max(version) FROM charter.constitutions WHERE tenant_id = $1", tenant_id
        )
    return Constitution(
        tenant_id=tenant_id,
        version=(latest or 0) + 1,
        content_hash=content_hash(document),
        document=document,
    )


async def run_backtest(
    db: Database, tenant_id: str, text: str, *, since: datetime | None = None
) -> BacktestReport:
    proposed = await candidate(db, tenant_id, text)
    async with db.tenant(tenant_id) as conn:
        entries = [e async for e in audit_trail.entries(conn, tenant_id)]
    return backtest(proposed, entries, since=since)
