"""Tenant-scoped transactions over an asyncpg pool of the application role.

The tenant is set with `set_config('charter.tenant_id', $1, true)`: transaction-local, so
a pooled connection never carries one tenant's identity into another's transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal, TypeVar

import asyncpg

from charter.storage.migrate import pending_migrations
from charter.storage.server_checks import check_application_role, check_server

K = TypeVar("K")

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

#: How many of this task's transactions are open: a provider is never called while one is
#: (a slow provider would hold a pooled connection, and any lock taken in it, meanwhile).
#: Context-local, so it follows a call into `asyncio.to_thread` and child tasks.
_open_transactions: contextvars.ContextVar[int] = contextvars.ContextVar(
    "charter_open_transactions", default=0
)


def in_transaction() -> bool:
    """Whether the calling task holds a pooled connection inside `Database.tenant`."""
    return _open_transactions.get() > 0


class TenantRequired(ValueError):
    """A tenant-scoped operation was attempted without a valid tenant id."""


def valid_tenant(tenant_id: object) -> str:
    """The tenant id, if it is one; TenantRequired otherwise."""
    if not isinstance(tenant_id, str) or not _TENANT.match(tenant_id):
        raise TenantRequired(f"invalid tenant id {tenant_id!r}")
    return tenant_id


class Database:
    """The application's only way into PostgreSQL: every query runs inside `tenant()`."""

    def __init__(self, pool: asyncpg.Pool, dsn: str | None = None) -> None:
        self._pool = pool
        #: How the pool connects, for a process of our own that reads beside it (the
        #: verifier's range workers); None for a pool made elsewhere.
        self.dsn = dsn

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 10) -> Database:
        """A pool of the application role, after refusing a server with RLS bypasses and a
        role that could step around RLS (a superuser, say, through a misconfigured DSN)."""
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        try:
            async with pool.acquire() as conn:
                await check_server(conn)  # type: ignore[arg-type]
                await check_application_role(conn)  # type: ignore[arg-type]
        except BaseException:
            await pool.close()
            raise
        return cls(pool, dsn)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def tenant(
        self, tenant_id: str, *, snapshot: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction in which row-level security sees exactly one tenant. `snapshot`:
        read-only and repeatable read, every statement seeing the same committed state."""
        valid_tenant(tenant_id)
        isolation: Literal["repeatable_read"] | None = "repeatable_read" if snapshot else None
        depth = _open_transactions.set(_open_transactions.get() + 1)
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation=isolation, readonly=snapshot),
            ):
                await conn.execute("SELECT set_config('charter.tenant_id', $1, true)", tenant_id)
                # The pool hands out a proxy that behaves as a Connection.
                yield conn  # type: ignore[misc]
        finally:
            _open_transactions.reset(depth)

    @asynccontextmanager
    async def advisory_lock(self, name: str, *, timeout: float = 30.0) -> AsyncIterator[bool]:
        """A session-level advisory lock named `name`, held on a connection of its own with
        no transaction open, so the caller may make a network call while holding it (and
        one process at a time does: an OAuth refresh). Yields False if not acquired within
        `timeout` seconds (polled, so no statement waits on the lock)."""
        async with self._pool.acquire() as conn:
            deadline = asyncio.get_running_loop().time() + timeout
            acquired = False
            while not acquired:
                acquired = bool(
                    await conn.fetchval(
                        "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name
                    )
                )
                if acquired or asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(0.05)
            try:
                yield acquired
            finally:
                if acquired:
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", name)

    async def pending_migrations(self) -> list[str]:
        """Migrations this code needs that `charter migrate` has not applied yet."""
        async with self._pool.acquire() as conn:
            return await pending_migrations(conn)  # type: ignore[arg-type]

    async def summed_over_tenants(
        self, count: Callable[[asyncpg.Connection, str], Awaitable[dict[K, int]]]
    ) -> dict[K, int]:
        """`count` in each tenant's own transaction, added up key by key: a total across
        tenants that never leaves a tenant id beside a number."""
        totals: dict[K, int] = {}
        for tenant in await self.tenant_ids():
            async with self.tenant(tenant) as conn:
                for key, n in (await count(conn, tenant)).items():
                    totals[key] = totals.get(key, 0) + n
        return totals

    async def tenant_ids(self) -> list[str]:
        """Every tenant id, through the owner's narrow definer function."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT charter.tenant_ids() AS tenant_id")
        return [r["tenant_id"] for r in rows]
