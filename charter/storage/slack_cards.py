"""Slack configuration per tenant and the card posted per exception (migration 005_slack)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

#: A claim older than this with no `message_ts` belongs to a poster that died mid-post.
STALE_CLAIM = timedelta(minutes=2)


class SlackTenantConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    channel_id: str = Field(pattern=r"^[CGD][A-Z0-9]{2,30}$")
    team_id: str | None = Field(default=None, pattern=r"^T[A-Z0-9]{2,30}$")
    backup_member_id: str | None = None
    backup_after: timedelta | None = Field(default=None, gt=timedelta(0))


class Card(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    exception_id: str
    channel_id: str
    message_ts: str | None
    opened_at: datetime
    backup_notified_at: datetime | None


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: str
    display_name: str
    slack_user_id: str | None
    roles: list[str]
    active: bool


class DecisionRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approver: str
    display_name: str
    outcome: str
    reason: str
    amendment_version: int | None
    decided_at: datetime


class CardState(BaseModel):
    """Everything a card shows, read in one tenant transaction: the truth, not a cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    tenant_name: str
    exception_id: str
    workflow_id: str
    proposal_id: str
    agent: str
    status: str
    context: dict[str, Any]
    opened_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    decisions: list[DecisionRow]
    executed_reference: str | None
    rule_titles: dict[str, str]
    """Titles of the rules of the pinned constitution version, by id."""
    edit: dict[str, Any] | None = None
    """After approve-with-edit: the edited `proposal` and the gate's `verdict` on it, which
    the approvals are bound to (an edit comes with the first approval)."""
    closed_unstable: str | None = None
    """Why the approved proposal closed without executing, when its facts kept moving
    (`facts_unstable`): every change, in order."""


async def get_config(conn: asyncpg.Connection, tenant_id: str) -> SlackTenantConfig | None:
    row = await conn.fetchrow(
        "SELECT tenant_id, channel_id, team_id, backup_member_id, backup_after "
        "FROM charter.slack_tenants WHERE tenant_id = $1",
        tenant_id,
    )
    return SlackTenantConfig(**dict(row)) if row else None


async def save_config(conn: asyncpg.Connection, config: SlackTenantConfig) -> None:
    await conn.execute(
        "INSERT INTO charter.slack_tenants (tenant_id, channel_id, team_id, backup_member_id, "
        "backup_after) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (tenant_id) DO UPDATE SET "
        "channel_id = EXCLUDED.channel_id, team_id = EXCLUDED.team_id, backup_member_id = "
        "EXCLUDED.backup_member_id, backup_after = EXCLUDED.backup_after, updated_at = now()",
        config.tenant_id,
        config.channel_id,
        config.team_id,
        config.backup_member_id,
        config.backup_after,
    )


_SELECT_MEMBER = (
    "SELECT member_id, display_name, slack_user_id, roles, active FROM charter.members "
    "WHERE tenant_id = $1 AND "
)


async def _member_where(
    conn: asyncpg.Connection, tenant_id: str, condition: str, value: str
) -> Member | None:
    row = await conn.fetchrow(_SELECT_MEMBER + condition, tenant_id, value)
    return Member(**dict(row)) if row else None


async def member_by_slack_user(
    conn: asyncpg.Connection, tenant_id: str, slack_user_id: str
) -> Member | None:
    return await _member_where(conn, tenant_id, "slack_user_id = $2", slack_user_id)


async def member(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> Member | None:
    return await _member_where(conn, tenant_id, "member_id = $2", member_id)


def _card(row: asyncpg.Record) -> Card:
    return Card(**dict(row))


_CARD_COLUMNS = "tenant_id, exception_id, channel_id, message_ts, opened_at, backup_notified_at"


async def get_card(conn: asyncpg.Connection, tenant_id: str, exception_id: str) -> Card | None:
    row = await conn.fetchrow(
        f"SELECT {_CARD_COLUMNS} FROM charter.slack_cards WHERE tenant_id = $1 AND "
        "exception_id = $2",
        tenant_id,
        exception_id,
    )
    return _card(row) if row else None


async def claim_card(
    conn: asyncpg.Connection,
    tenant_id: str,
    exception_id: str,
    channel_id: str,
    opened_at: datetime,
) -> bool:
    """Take the right to post this exception's card. False: posted, or being posted."""
    claimed = await conn.fetchval(
        "INSERT INTO charter.slack_cards (tenant_id, exception_id, channel_id, claimed_at, "
        "opened_at) VALUES ($1,$2,$3,now(),$4) ON CONFLICT (tenant_id, exception_id) DO UPDATE "
        "SET claimed_at = now(), channel_id = EXCLUDED.channel_id, updated_at = now() "
        "WHERE charter.slack_cards.message_ts IS NULL AND (charter.slack_cards.claimed_at IS NULL "
        "OR charter.slack_cards.claimed_at < now() - $5::interval) RETURNING 1",
        tenant_id,
        exception_id,
        channel_id,
        opened_at,
        STALE_CLAIM,
    )
    return claimed is not None


async def complete_card(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str, channel_id: str, ts: str
) -> None:
    await conn.execute(
        "UPDATE charter.slack_cards SET channel_id = $3, message_ts = $4, updated_at = now() "
        "WHERE tenant_id = $1 AND exception_id = $2",
        tenant_id,
        exception_id,
        channel_id,
        ts,
    )


async def release_card(conn: asyncpg.Connection, tenant_id: str, exception_id: str) -> None:
    """Posting failed: let the next reminder try again."""
    await conn.execute(
        "UPDATE charter.slack_cards SET claimed_at = NULL, updated_at = now() WHERE tenant_id = $1 "
        "AND exception_id = $2 AND message_ts IS NULL",
        tenant_id,
        exception_id,
    )


async def mark_backup_notified(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str, at: datetime
) -> bool:
    """True exactly once per card: the backup approver is called in once."""
    done = await conn.fetchval(
        "UPDATE charter.slack_cards SET backup_notified_at = $3, updated_at = now() WHERE "
        "tenant_id = $1 AND exception_id = $2 AND backup_notified_at IS NULL RETURNING 1",
        tenant_id,
        exception_id,
        at,
    )
    return done is not None


async def card_state(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str
) -> CardState | None:
    row = await conn.fetchrow(
        "SELECT e.exception_id, e.workflow_id, e.proposal_id, e.agent, e.status, "
        "e.context::text AS context, e.opened_at, e.expires_at, e.closed_at, t.name AS tenant_name "
        "FROM charter.exceptions e JOIN charter.tenants t USING (tenant_id) "
        "WHERE e.tenant_id = $1 AND e.exception_id = $2",
        tenant_id,
        exception_id,
    )
    if row is None:
        return None
    fields = dict(row)
    fields["context"] = json.loads(fields["context"])
    proposal = (tenant_id, row["workflow_id"], row["proposal_id"])
    return CardState(
        tenant_id=tenant_id,
        decisions=await _decisions(conn, *proposal),
        executed_reference=await _executed_reference(conn, *proposal),
        edit=await _approved_edit(conn, *proposal),
        closed_unstable=await _closed_unstable(conn, tenant_id, row["workflow_id"], exception_id),
        # A reasoning failure (`kind: reasoning_failure`) has no proposal, so no verdict and
        # no pinned version to read titles from.
        rule_titles=await _rule_titles(
            conn, tenant_id, (fields["context"].get("verdict") or {}).get("constitution_version")
        ),
        **fields,
    )


async def _closed_unstable(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, exception_id: str
) -> str | None:
    notice: str | None = await conn.fetchval(
        "SELECT snapshot->>'notice' FROM charter.audit_entries WHERE tenant_id = $1 AND "
        "workflow_id = $2 AND kind = 'facts_unstable' AND snapshot->>'exception_id' = $3 "
        "ORDER BY seq DESC LIMIT 1",
        tenant_id,
        workflow_id,
        exception_id,
    )
    return notice


async def _decisions(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> list[DecisionRow]:
    rows = await conn.fetch(
        "SELECT d.approver, coalesce(m.display_name, d.approver) AS display_name, d.outcome, "
        "d.reason, d.amendment_version, d.decided_at FROM charter.decisions d LEFT JOIN "
        "charter.members m ON m.tenant_id = d.tenant_id AND m.member_id = d.approver "
        "WHERE d.tenant_id = $1 AND d.workflow_id = $2 AND d.proposal_id = $3 "
        "ORDER BY d.decided_at, d.approver",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return [DecisionRow(**dict(d)) for d in rows]


async def _executed_reference(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> str | None:
    reference: str | None = await conn.fetchval(
        "SELECT connector_reference FROM charter.actions WHERE tenant_id = $1 AND "
        "workflow_id = $2 AND proposal_id = $3 LIMIT 1",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return reference


async def _approved_edit(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> dict[str, Any] | None:
    """The edited proposal and the gate's verdict on it, if an approval is bound to them."""
    edit = await conn.fetchrow(
        "SELECT e.proposal::text AS proposal, e.verdict::text AS verdict FROM "
        "charter.proposal_edits e WHERE e.tenant_id = $1 AND e.workflow_id = $2 AND "
        "e.proposal_id = $3 AND e.proposal_digest IN (SELECT d.proposal_digest FROM "
        "charter.decisions d WHERE d.tenant_id = $1 AND d.workflow_id = $2 AND "
        "d.proposal_id = $3 AND d.outcome = 'approve') LIMIT 1",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return {k: json.loads(edit[k]) for k in ("proposal", "verdict")} if edit else None


async def _rule_titles(
    conn: asyncpg.Connection, tenant_id: str, version: int | None
) -> dict[str, str]:
    """The titles of the rules of a constitution version, by id (none without a version)."""
    if version is None:
        return {}
    document = await conn.fetchval(
        "SELECT document::text FROM charter.constitutions WHERE tenant_id = $1 AND version = $2",
        tenant_id,
        version,
    )
    rules = json.loads(document)["rules"] if document else []
    return {r["id"]: r["title"] for r in rules}
