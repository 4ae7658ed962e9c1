"""Migrations have a number each, in the order they apply; a database migrated when two files
shared a number upgrades to the new versions without applying anything again."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from charter.config.settings import app_dsn
from charter.storage import Database, migrate
from charter.storage.migration_versions import (
    RENUMBERED,
    MigrationNumberingError,
    check_numbering,
    migration_files,
)
from tests.support.catalog import catalog_problems
from tests.support.scratch import empty_database

#: The versions as the files were named before the renumbering, in the order they applied.
OLD_VERSIONS = [
    "001_core",
    "002_audit_isolation",
    "003_credentials",
    "005_proposal_edits",
    "006_slack",
    "007_audit_run_index",
    "008_migration_status",
    "008_spend_ledger",
    "009_connectors",
    "009_superseded_decisions",
    "010_budget_changes",
    "010_member_keys",
    "011_slack_replays",
]
VERSIONS = [version for version, _ in migration_files()]
#: The migrations added since the renumbering: an old database lacks them.
NEWER = VERSIONS[len(OLD_VERSIONS) :]
# The module, not the function `charter.storage.migrate` that the package exports.
migrate_module = importlib.import_module("charter.storage.migrate")


def test_every_migration_has_a_number_of_its_own_in_the_order_they_apply() -> None:
    assert [int(v[:3]) for v in VERSIONS] == list(range(1, len(VERSIONS) + 1))
    # The same files in the same order: only the numbers changed.
    assert [RENUMBERED.get(old, old) for old in OLD_VERSIONS] == VERSIONS[: len(OLD_VERSIONS)]


@pytest.mark.parametrize(
    "versions",
    [
        ["001_core", "002_audit", "002_credentials"],  # one number, two files
        ["001_core", "003_credentials"],  # a file lost
        ["002_core"],  # not from 001
        ["001_core", "2_audit"],  # not NNN_name
    ],
)
def test_numbering_refuses_shared_and_missing_numbers(versions: list[str]) -> None:
    with pytest.raises(MigrationNumberingError):
        check_numbering(versions)


@pytest.fixture
async def empty_dsn(pg_server: str) -> AsyncIterator[str]:
    async with empty_database(pg_server, prefix="charter_versions") as dsn:
        yield dsn


async def migrate_as_before(dsn: str, monkeypatch: pytest.MonkeyPatch, upto: str) -> None:
    """Migrate as the release before the renumbering did: its files, its versions."""
    files = list(zip(OLD_VERSIONS, (sql for _, sql in migration_files()), strict=False))
    older = files[: OLD_VERSIONS.index(upto) + 1]
    with monkeypatch.context() as m:
        m.setattr(migrate_module, "migration_files", lambda: older)
        assert await migrate(dsn) == [version for version, _ in older]


async def ledger(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)  # the test's administrator: a superuser, past RLS
    try:
        rows = await conn.fetch("SELECT version, applied_at FROM charter_meta.schema_migrations")
        return {r["version"]: r["applied_at"] for r in rows}
    finally:
        await conn.close()


async def pending(dsn: str) -> list[str]:
    """What a worker of this code finds missing, as the application role."""
    db = await Database.connect(app_dsn(dsn), max_size=1)
    try:
        return await db.pending_migrations()
    finally:
        await db.close()


async def problems(dsn: str) -> Sequence[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await catalog_problems(conn)
    finally:
        await conn.close()


async def assert_up_to_date(dsn: str) -> None:
    """Every version recorded under its current name, none missing, isolation intact."""
    assert sorted(await ledger(dsn)) == VERSIONS
    assert await pending(dsn) == []
    assert await problems(dsn) == []


@pytest.mark.db
async def test_a_fresh_database_migrates_from_scratch(empty_dsn: str) -> None:
    assert await migrate(empty_dsn) == VERSIONS
    assert await migrate(empty_dsn) == []
    await assert_up_to_date(empty_dsn)


@pytest.mark.db
async def test_a_database_migrated_under_the_old_versions_upgrades_to_the_new(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate_as_before(empty_dsn, monkeypatch, upto=OLD_VERSIONS[-1])
    before = await ledger(empty_dsn)
    # A worker of this code finds only the migrations added since missing...
    assert await pending(empty_dsn) == NEWER
    # ... and `charter migrate` applies only those, and records each earlier migration under
    # its new version, applied when it was.
    assert await migrate(empty_dsn) == NEWER
    after = await ledger(empty_dsn)
    assert {RENUMBERED.get(v, v): at for v, at in before.items()} == {
        v: at for v, at in after.items() if v not in NEWER
    }
    await assert_up_to_date(empty_dsn)


@pytest.mark.db
async def test_a_database_behind_the_old_release_gets_only_what_it_lacks(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate_as_before(empty_dsn, monkeypatch, upto="010_budget_changes")
    lacking = ["012_member_keys", "013_slack_replays", *NEWER]
    assert await pending(empty_dsn) == lacking
    assert await migrate(empty_dsn) == lacking
    await assert_up_to_date(empty_dsn)


@pytest.mark.db
async def test_old_versions_recorded_again_beside_the_new_are_dropped(empty_dsn: str) -> None:
    """How an older release is run on an upgraded database (docs/architecture.md): its
    versions recorded beside the new ones. Upgrading again keeps the new ones only."""
    await migrate(empty_dsn)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            "INSERT INTO charter_meta.schema_migrations (version) SELECT unnest($1::text[])",
            list(RENUMBERED),
        )
    finally:
        await conn.close()
    assert await migrate(empty_dsn) == []
    await assert_up_to_date(empty_dsn)
