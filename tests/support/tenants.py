"""Tenants for the database tests: seeded, and with a row in every table runs fill.

Every table of the application schemas must hold rows of both tenants before the isolation
matrix runs; the demo seed covers the books, `RUN_ROWS` the tables that runs fill.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from charter.demo.seed import seed
from charter.storage import Database
from tests.support.vault import session_vault

#: Rows for tables the demo seed leaves empty, inserted as the administrator. A new table
#: needs an entry here (the matrix test says so), or its isolation goes untested.
RUN_ROWS: dict[str, str] = {
    "proposals": "INSERT INTO charter.proposals (tenant_id, workflow_id, proposal_id, run_id, "
    "agent, action, proposal, verdict, outcome, constitution_version) VALUES "
    "($1, 'wf-1', 'p1', 'run-1', 'payables', 'schedule_payment', '{}', '{}', 'execute', 1)",
    "exceptions": "INSERT INTO charter.exceptions (tenant_id, exception_id, workflow_id, "
    "proposal_id, agent, status, context, expires_at) VALUES "
    "($1, 'ex-1', 'wf-1', 'p1', 'payables', 'open', '{}', now() + interval '1 day')",
    "decisions": "INSERT INTO charter.decisions (tenant_id, workflow_id, proposal_id, approver, "
    "outcome, proposal_digest) VALUES ($1, 'wf-1', 'p1', 'sam', 'approve', 'digest')",
    "actions": "INSERT INTO charter.actions (tenant_id, idempotency_key, workflow_id, "
    "proposal_id, action, proposal, authorisation, connector_reference) VALUES "
    "($1, 'key-1', 'wf-1', 'p1', 'schedule_payment', '{}', '{}', 'ref-1')",
    "proposal_edits": "INSERT INTO charter.proposal_edits (tenant_id, workflow_id, proposal_id, "
    "proposal_digest, proposal, verdict, edited_by) VALUES "
    "($1, 'wf-1', 'p1', 'digest-2', '{}', '{}', 'maya')",
    "spend_ledger": "INSERT INTO charter.spend_ledger (tenant_id, idempotency_key, workflow_id, "
    "proposal_id, agent, action, payee, amount, currency, autonomous, state, reserved_at, "
    "expires_at) VALUES ($1, 'key-1', 'wf-1', 'p1', 'payables', 'schedule_payment', "
    "'vendor:aws', 100, 'USD', true, 'reserved', now(), now() + interval '10 minutes')",
    "member_keys": "INSERT INTO charter.member_keys (tenant_id, key_id, kind, member_id, "
    f"public_key, registered_by) VALUES ($1, 'mk-{'0' * 16}', 'member', 'sam', '{'a' * 64}', 'x')",
    "budget_changes": "INSERT INTO charter.budget_changes (tenant_id, idempotency_key, "
    "campaign_id, budget_before, budget_after) VALUES ($1, 'key-2', 'cmp-holiday', 400, 500)",
    "slack_tenants": "INSERT INTO charter.slack_tenants (tenant_id, channel_id) "
    "VALUES ($1, 'C0FINANCE')",
    "slack_cards": "INSERT INTO charter.slack_cards (tenant_id, exception_id, channel_id, "
    "message_ts, opened_at) VALUES ($1, 'ex-1', 'C0FINANCE', '1700000000.000100', now())",
    "passkey_invitations": "INSERT INTO charter.passkey_invitations (tenant_id, token_hash, "
    f"member_id, created_by, expires_at) VALUES ($1, '{'0' * 64}', 'sam', 'maya', "
    "now() + interval '1 hour')",
    "connectors": "INSERT INTO charter.connectors (tenant_id, capability, provider, settings, "
    "created_by) VALUES ($1, 'payments', 'modern-treasury', '{}', 'maya')",
    "write_leases": "INSERT INTO charter.write_leases (tenant_id, subject, idempotency_key, "
    "holder, state, claimed_at, expires_at) VALUES ($1, 'schedule_payment/INV-1041', 'key-1', "
    "'attempt-1', 'claimed', now(), now() + interval '30 seconds')",
    "plaid_cursors": "INSERT INTO charter.plaid_cursors (tenant_id, item_id, cursor) "
    "VALUES ($1, 'item-1', 'cursor-1')",
}


@dataclass(frozen=True)
class TenantPair:
    a: str
    b: str


async def new_tenant(db: Database, admin: asyncpg.Connection, admin_dsn: str) -> str:
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    await seed(
        db, tenant_id, template="acme", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    for sql in RUN_ROWS.values():
        await admin.execute(sql, tenant_id)
    return tenant_id
