"""What the audit trail holds of a tenant, and an audit trail that refuses every append.

The refusing one stands in for `charter.storage.audit_trail` inside a service module: a
service writes its change and its entry in one transaction, so when the entry cannot be
appended, the change must not be there either.
"""

from __future__ import annotations

from typing import Any

from charter.audit.chain import AuditEntry
from charter.storage import Database, audit_trail


class AppendRefused(Exception):
    """The stand-in audit trail refused the entry."""


class RefusingAuditTrail:
    """Has `append` as `audit_trail` has; every call raises AppendRefused."""

    async def append(self, *args: Any, **kwargs: Any) -> None:
        raise AppendRefused(f"audit entry {args[2] if len(args) > 2 else '?'} refused")


async def entries_of(db: Database, tenant: str, kind: str) -> list[AuditEntry]:
    """The tenant's audit entries of `kind`, in chain order."""
    async with db.tenant(tenant) as conn:
        return [e async for e in audit_trail.entries(conn, tenant) if e.kind == kind]
