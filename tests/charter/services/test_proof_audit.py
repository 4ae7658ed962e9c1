"""`charter audit verify` judges a front door's statement by the Slack id its member held
when it was recorded, as the audit trail tells it."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.worker import Worker

from charter.audit.chain import ChainEntry
from charter.config.settings import Settings
from charter.crypto import statements
from charter.services import membership, proof_audit, proofs
from charter.storage import Database, audit_trail
from tests.support.stolen_worker import APPROVE, binding_of, escalated
from workflows import AgentLoop


async def _problems(db: Database, tenant: str) -> list[str]:
    async with db.tenant(tenant) as conn:
        entries = [
            proof_audit.TrailEntry(e.seq, e.kind, e.occurred_at, e.snapshot)
            async for e in audit_trail.readable_entries(conn, tenant)
            if isinstance(e, ChainEntry)
        ]
        return await proof_audit.audit_problems(conn, tenant, entries)


async def test_a_slack_approval_still_verifies_after_the_member_changes_slack_id(
    client: Client, worker: Worker, db: Database, admin_dsn: str, tenant: str
) -> None:
    handle, ref, ps = await escalated(client, tenant)
    via_slack = proofs.sign_decision(
        APPROVE,
        statements.front_door_key("slack", Settings().member_key_folder),
        binding_of(ref, ps),
        datetime.now(UTC),
        via="slack",
        slack_user_id="U0MAYA",
        slack_team_id="T0ACME",
    )
    await handle.execute_update(AgentLoop.decide, via_slack)
    assert (await handle.result()).proposals[0].status == "executed"
    assert await _problems(db, tenant) == []
    # Maya moves to a new Slack account: what she approved from the old one stays proven.
    await membership.set_slack(admin_dsn, tenant, "maya", "U0MAYA2", actor="cli:test")
    assert await _problems(db, tenant) == []
