"""The executed-actions table: one row per idempotency key, written with the result entry."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from charter.storage import audit_trail
from schemas import Authorisation, Proposal, parse_authorisation


async def take_turn(
    conn: asyncpg.Connection, tenant_id: str, proposal: Proposal, idempotency_key: str
) -> None:
    """Wait for any other attempt at the same record (the same bill, say) to finish.

    Held until the caller's transaction ends: this run's retries, other runs paying the
    same bill and reconciliation each see what the one before them did at the provider.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"{tenant_id}/{proposal.action}/{proposal.reference or idempotency_key}",
    )


async def executed(
    conn: asyncpg.Connection, tenant_id: str, idempotency_key: str
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT connector_reference, executed_at FROM charter.actions WHERE tenant_id = $1 "
        "AND idempotency_key = $2",
        tenant_id,
        idempotency_key,
    )
    return row


async def intended_authorisation(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, idempotency_key: str
) -> Authorisation | None:
    """The authorisation of the latest `action_intent` committed under the key, or None when
    no attempt got as far as its intent (so none can have reached the provider)."""
    raw = await conn.fetchval(
        "SELECT snapshot -> 'authorisation' FROM charter.audit_entries WHERE tenant_id = $1 "
        "AND workflow_id = $2 AND kind = 'action_intent' AND snapshot ->> 'idempotency_key' = $3 "
        "ORDER BY seq DESC LIMIT 1",
        tenant_id,
        workflow_id,
        idempotency_key,
    )
    if raw is None:
        return None
    return parse_authorisation(json.loads(raw) if isinstance(raw, str) else raw)


async def record_result(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    idempotency_key: str,
    workflow_id: str,
    run_id: str | None,
    proposal: Proposal,
    authorisation: Authorisation,
    reference: str,
    executed_at: datetime,
    actor: str,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Insert the action row and append `action_result`, in the caller's transaction.

    False when a row for the key exists already (a concurrent attempt recorded it first):
    the caller must roll back and report theirs.
    """
    inserted = await conn.fetchval(
        "INSERT INTO charter.actions (tenant_id, idempotency_key, workflow_id, "
        "proposal_id, action, proposal, authorisation, connector_reference, "
        "executed_at) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        tenant_id,
        idempotency_key,
        workflow_id,
        proposal.proposal_id,
        proposal.action,
        proposal.model_dump_json(),
        json.dumps(authorisation.model_dump(mode="json")),
        reference,
        executed_at,
    )
    if inserted is None:
        return False
    await audit_trail.append(
        conn,
        tenant_id,
        "action_result",
        {
            "idempotency_key": idempotency_key,
            "connector_reference": reference,
            "status": "executed",
            **(extra or {}),
        },
        actor=actor,
        workflow_id=workflow_id,
        run_id=run_id,
    )
    return True
