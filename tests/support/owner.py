"""The owner role, for tests that change the law or the roster as an owner would.

The application role reads members and constitutions, it never writes them: a test that
adopts a version or deactivates a member does it as the owner role on the administrator
connection of the database its `Database` (the application pool) is on.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg

from charter.storage import Database
from charter.storage.member_keys import owner_tenant

_ADMIN_DSNS: dict[int, str] = {}


def remember(db: Database, admin_dsn: str) -> None:
    """`db` is the application pool of the database `admin_dsn` administers."""
    _ADMIN_DSNS[id(db)] = admin_dsn


def as_owner(db: Database, tenant_id: str) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A transaction as the owner role for `tenant_id`, on `db`'s database."""
    return owner_tenant(_ADMIN_DSNS[id(db)], tenant_id)
