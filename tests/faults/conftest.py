"""The fault-injection suite runs only under `make faults` (CHARTER_FAULTS=1): it starts and
kills real processes for minutes, which the ordinary suite should not pay for."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from charter.config.settings import app_dsn
from charter.storage import Database
from tests.support import owner
from tests.support.faults import tally
from tests.support.faults.proxy import Proxy
from tests.support.faults.servers import Postgres, Temporal
from tests.support.scratch import migrated_database


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the scenarios against the payments provider found, one line each."""
    if tally.LINES:
        terminalreporter.section("paid through a forgetful, lagging provider")
        for line in tally.LINES:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("CHARTER_FAULTS") == "1":
        return
    skip = pytest.mark.skip(reason="fault injection runs with `make faults`")
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(skip)


# Each module gets a stack of its own: the scenarios restart and cut it off.


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.close()


@pytest.fixture(scope="module")
async def dsn(pg: Postgres) -> AsyncIterator[str]:
    async with migrated_database(pg.admin_dsn, prefix="charter_faults") as admin:
        yield admin


@pytest.fixture(scope="module")
async def proxy(pg: Postgres) -> AsyncIterator[Proxy]:
    server = await Proxy(pg.socket).start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Temporal]:
    server = Temporal(tmp_path_factory.mktemp("temporal"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def fdb(dsn: str) -> AsyncIterator[Database]:
    db = await Database.connect(app_dsn(dsn))
    owner.remember(db, dsn)
    yield db
    await db.close()
