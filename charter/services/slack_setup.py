"""Where a tenant's exception cards go in Slack, and who is called in when nobody decides."""

from __future__ import annotations

from charter.governance import approvals
from charter.storage import Database
from charter.storage import slack_cards as store
from charter.storage.slack_cards import SlackTenantConfig


class BackupRefused(Exception):
    """The backup approver named could not be called in: not an active approver, or no
    Slack id to call them by."""


async def configure(db: Database, config: SlackTenantConfig) -> None:
    """Save the tenant's Slack channel (and backup approver, checked in the same transaction)."""
    tenant_id, backup_id = config.tenant_id, config.backup_member_id
    async with db.tenant(tenant_id) as conn:
        if backup_id is not None:
            backup = await store.member(conn, tenant_id, backup_id)
            if backup is None or not backup.active or not approvals.is_approver(backup.roles):
                raise BackupRefused(f"{backup_id!r} is not an active approver of {tenant_id!r}")
            if backup.slack_user_id is None:
                raise BackupRefused(f"{backup_id!r} has no Slack user id")
        await store.save_config(conn, config)
