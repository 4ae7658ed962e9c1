"""Start-up refuses PostgreSQL versions with known row-level-security bypasses."""

from __future__ import annotations

import asyncpg
import pytest

from charter.storage import UnsafeServer
from charter.storage.server_checks import check_server, check_version


@pytest.mark.parametrize("version_num", [150014, 150020, 160010, 170006, 180000, 190003, 130022])
def test_fixed_releases_are_accepted(version_num: int) -> None:
    check_version(version_num)


@pytest.mark.parametrize(
    ("version_num", "message"),
    [
        (150013, "upgrade to 15.14"),  # CVE-2025-8713
        (150008, "upgrade to 15.14"),  # CVE-2024-10976 too
        (160009, "upgrade to 16.10"),
        (170005, "upgrade to 17.6"),
        (140018, "upgrade to 14.19"),
        (130021, "upgrade to 13.22"),
        (120022, "end-of-life"),
        (90624, "end-of-life"),
    ],
)
def test_vulnerable_releases_are_refused(version_num: int, message: str) -> None:
    with pytest.raises(UnsafeServer, match=message):
        check_version(version_num)


@pytest.mark.db
async def test_the_servers_under_test_pass(admin: asyncpg.Connection) -> None:
    assert await check_server(admin) >= 150014


@pytest.mark.db
async def test_application_pool_refuses_a_superuser(admin_dsn: str) -> None:
    """A DSN that points the application at the administrator is refused at start-up."""
    from charter.storage import Database

    with pytest.raises(UnsafeServer, match="bypasses row-level security"):
        await Database.connect(admin_dsn)
