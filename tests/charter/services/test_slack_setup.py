"""A tenant's Slack channel as a service: its backup approver checked where it is saved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from charter.services import membership, slack_setup
from charter.storage import Database
from charter.storage import slack_cards as store


async def _config(db: Database, tenant: str) -> store.SlackTenantConfig | None:
    async with db.tenant(tenant) as conn:
        return await store.get_config(conn, tenant)


async def test_the_channel_and_backup_are_saved(db: Database, tenant: str) -> None:
    config = store.SlackTenantConfig(
        tenant_id=tenant,
        channel_id="C0CARDS",
        backup_member_id="sam",
        backup_after=timedelta(hours=4),
    )
    await slack_setup.configure(db, config)
    assert await _config(db, tenant) == config


@pytest.mark.parametrize(
    ("backup", "problem"),
    [
        ("leo", "'leo' is not an active approver of"),
        ("nobody", "'nobody' is not an active approver of"),
    ],
)
async def test_a_backup_who_cannot_be_called_in_is_refused(
    db: Database, tenant: str, backup: str, problem: str
) -> None:
    config = store.SlackTenantConfig(
        tenant_id=tenant, channel_id="C0CARDS", backup_member_id=backup, backup_after=timedelta(1)
    )
    with pytest.raises(slack_setup.BackupRefused, match=problem):
        await slack_setup.configure(db, config)
    assert await _config(db, tenant) is None


async def test_a_backup_without_a_slack_id_is_refused(
    db: Database, admin_dsn: str, tenant: str
) -> None:
    await membership.set_slack(admin_dsn, tenant, "sam", None, actor="test")
    config = store.SlackTenantConfig(
        tenant_id=tenant, channel_id="C0CARDS", backup_member_id="sam", backup_after=timedelta(1)
    )
    with pytest.raises(slack_setup.BackupRefused, match="'sam' has no Slack user id"):
        await slack_setup.configure(db, config)
    assert await _config(db, tenant) is None
