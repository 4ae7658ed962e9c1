"""Proposals, exceptions, decisions and actions of agent runs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from charter.audit.canonical import canonical_json, sha256_hex
from charter.storage import audit_trail, roster
from schemas import ExchangeRate, Observation, Proposal, Verdict


def proposal_digest(proposal: Proposal) -> str:
    """What a decision or an authorisation is bound to: the exact proposal content."""
    return sha256_hex(canonical_json(proposal.model_dump(mode="json")))


def exception_id_for(workflow_id: str, proposal_id: str) -> str:
    return "ex-" + sha256_hex(f"{workflow_id}/{proposal_id}".encode())[:10]


def idempotency_key_for(workflow_id: str, proposal: Proposal) -> str:
    """Keyed on the workflow id, not the run id: a reset or retried run never acts twice."""
    return sha256_hex(f"{workflow_id}/{proposal.proposal_id}/{proposal_digest(proposal)}".encode())[
        :32
    ]


async def save_proposal(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    workflow_id: str,
    run_id: str,
    agent: str,
    proposal: Proposal,
    verdict: Verdict,
) -> None:
    await conn.execute(
        "INSERT INTO charter.proposals (tenant_id, workflow_id, proposal_id, run_id, agent, action, "
        "proposal, verdict, outcome, constitution_version) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,"
        "$8::jsonb,$9,$10) ON CONFLICT (tenant_id, workflow_id, proposal_id) DO NOTHING",
        tenant_id,
        workflow_id,
        proposal.proposal_id,
        run_id,
        agent,
        proposal.action,
        json.dumps(proposal.model_dump(mode="json")),
        json.dumps(verdict.model_dump(mode="json")),
        verdict.outcome,
        verdict.constitution_version,
    )


async def proposal_recorded(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, run_id: str, proposal_id: str
) -> bool:
    """Whether this run already recorded the proposal (and its verdict)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM charter.proposals WHERE tenant_id = $1 "
            "AND workflow_id = $2 AND run_id = $3 AND proposal_id = $4)",
            tenant_id,
            workflow_id,
            run_id,
            proposal_id,
        )
    )


def _proposal_and_verdict(row: asyncpg.Record) -> tuple[Proposal, Verdict]:
    return (
        Proposal.model_validate_json(row["proposal"]),
        Verdict.model_validate_json(row["verdict"]),
    )


async def get_proposal(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> tuple[Proposal, Verdict] | None:
    row = await conn.fetchrow(
        "SELECT proposal::text AS proposal, verdict::text AS verdict FROM charter.proposals "
        "WHERE tenant_id = $1 AND workflow_id = $2 AND proposal_id = $3",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return _proposal_and_verdict(row) if row is not None else None


async def open_exception(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    exception_id: str,
    workflow_id: str,
    proposal_id: str,
    agent: str,
    context: dict[str, Any],
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO charter.exceptions (tenant_id, exception_id, workflow_id, proposal_id, agent, "
        "status, context, expires_at) VALUES ($1,$2,$3,$4,$5,'open',$6::jsonb,$7) "
        "ON CONFLICT (tenant_id, exception_id) DO NOTHING",
        tenant_id,
        exception_id,
        workflow_id,
        proposal_id,
        agent,
        json.dumps(context),
        expires_at,
    )


async def close_exception(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str, status: str
) -> timedelta | None:
    """Close an open exception; return how long it was open (None if it was not open)."""
    waited: timedelta | None = await conn.fetchval(
        "UPDATE charter.exceptions SET status = $3, closed_at = now() WHERE tenant_id = $1 AND "
        "exception_id = $2 AND status = 'open' RETURNING closed_at - opened_at",
        tenant_id,
        exception_id,
        status,
    )
    return waited


async def open_exceptions_by_agent(conn: asyncpg.Connection, tenant_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT agent, count(*) AS n FROM charter.exceptions WHERE tenant_id = $1 "
        "AND status = 'open' GROUP BY agent",
        tenant_id,
    )
    return {row["agent"]: int(row["n"]) for row in rows}


class NotDismissable(ValueError):
    """Only an exception without a proposal (an unreadable reasoner reply) can be dismissed."""


async def dismiss_reply_exception(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str, *, member: str, reason: str
) -> None:
    """Close an unreadable-reply exception once a human has read it.

    Its run has already ended and it holds no proposal, so there is nothing to approve and no
    workflow to tell: the exception is closed here, audited, and nothing executes.
    """
    row = await conn.fetchrow(
        "SELECT workflow_id, status, context->>'kind' AS kind FROM charter.exceptions "
        "WHERE tenant_id = $1 AND exception_id = $2 FOR UPDATE",
        tenant_id,
        exception_id,
    )
    if row is None:
        raise NotDismissable(f"no exception {exception_id!r} for tenant {tenant_id!r}")
    if row["kind"] != "reasoning_failure":
        raise NotDismissable(
            f"{exception_id} holds a proposal: decide it with `charter decide` instead"
        )
    if row["status"] != "open":
        raise NotDismissable(f"{exception_id} is {row['status']}, not open")
    if not await roster.is_approver(conn, tenant_id, member):
        raise NotDismissable(f"{member!r} is not an authorised approver of {tenant_id!r}")
    await close_exception(conn, tenant_id, exception_id, "rejected")
    await audit_trail.append(
        conn,
        tenant_id,
        "exception_dismissed",
        {"exception_id": exception_id, "reason": reason, "note": "Nothing was executed."},
        actor=f"member:{member}",
        workflow_id=row["workflow_id"],
    )


_SELECT_EXCEPTIONS = (
    "SELECT exception_id, workflow_id, proposal_id, agent, status, context::text AS context, "
    "opened_at, expires_at, closed_at FROM charter.exceptions WHERE tenant_id = $1 "
)


def _exception(row: asyncpg.Record) -> dict[str, Any]:
    """An exception's row, its context decoded."""
    return {**dict(row), "context": json.loads(row["context"])}


async def list_exceptions(
    conn: asyncpg.Connection, tenant_id: str, *, status: str | None = "open"
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _SELECT_EXCEPTIONS
        + "AND ($2::text IS NULL OR status = $2) ORDER BY opened_at, exception_id",
        tenant_id,
        status,
    )
    return [_exception(r) for r in rows]


async def get_exception(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        _SELECT_EXCEPTIONS + "AND exception_id = $2",
        tenant_id,
        exception_id,
    )
    return _exception(row) if row else None


async def lock_exception(
    conn: asyncpg.Connection, tenant_id: str, exception_id: str
) -> dict[str, Any] | None:
    """The exception's row, locked until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT exception_id, workflow_id, proposal_id, status, expires_at FROM "
        "charter.exceptions WHERE tenant_id = $1 AND exception_id = $2 FOR UPDATE",
        tenant_id,
        exception_id,
    )
    return dict(row) if row else None


async def rejections(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> list[str]:
    """Members who rejected a proposal: any reject rejects, whatever approvals sit beside it."""
    rows = await conn.fetch(
        "SELECT approver FROM charter.decisions WHERE tenant_id = $1 AND workflow_id = $2 "
        "AND proposal_id = $3 AND outcome = 'reject' AND superseded_by IS NULL ORDER BY approver",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return [r["approver"] for r in rows]


async def decisions(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> list[tuple[str, str]]:
    """Every recorded decision on a proposal, as (approver, outcome), in the order made."""
    rows = await conn.fetch(
        "SELECT approver, outcome FROM charter.decisions WHERE tenant_id = $1 AND "
        "workflow_id = $2 AND proposal_id = $3 AND superseded_by IS NULL ORDER BY decided_at, approver",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return [(r["approver"], r["outcome"]) for r in rows]


async def record_decision(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    workflow_id: str,
    proposal_id: str,
    approver: str,
    outcome: str,
    reason: str,
    digest: str,
    amendment_version: int | None,
    statement: str | None = None,
    signature: str | None = None,
    nonce: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO charter.decisions (tenant_id, workflow_id, proposal_id, approver, outcome, "
        "reason, proposal_digest, amendment_version, statement, signature, nonce) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
        tenant_id,
        workflow_id,
        proposal_id,
        approver,
        outcome,
        reason,
        digest,
        amendment_version,
        statement,
        signature,
        nonce,
    )


#: The approvals that count: of exactly this proposal content, by members still authorised.
_COUNTED_APPROVALS = (
    "FROM charter.decisions d JOIN charter.members m ON m.tenant_id = d.tenant_id AND "
    "m.member_id = d.approver WHERE d.tenant_id = $1 AND d.workflow_id = $2 "
    "AND d.proposal_id = $3 AND d.proposal_digest = $4 AND d.outcome = 'approve' AND m.active "
    "AND d.superseded_by IS NULL "
    "AND m.roles && ARRAY['approver', 'owner']"
)


async def approvals(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str, digest: str
) -> list[str]:
    """Approvers who approved exactly this proposal content and are still authorised."""
    rows = await conn.fetch(
        "SELECT d.approver " + _COUNTED_APPROVALS, tenant_id, workflow_id, proposal_id, digest
    )
    return [r["approver"] for r in rows]


async def approval_statements(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str, digest: str
) -> list[str]:
    """The signed statements of the approvals `approvals` counts, as signed."""
    rows = await conn.fetch(
        "SELECT d.statement " + _COUNTED_APPROVALS + " AND d.statement IS NOT NULL",
        tenant_id,
        workflow_id,
        proposal_id,
        digest,
    )
    return [r["statement"] for r in rows]


async def save_edit(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    workflow_id: str,
    proposal: Proposal,
    verdict: Verdict,
    edited_by: str,
) -> str:
    """Store edited parameters and the gate's verdict on them; return their digest."""
    digest = proposal_digest(proposal)
    await conn.execute(
        "INSERT INTO charter.proposal_edits (tenant_id, workflow_id, proposal_id, "
        "proposal_digest, proposal, verdict, edited_by) VALUES ($1,$2,$3,$4,$5::jsonb,$6::jsonb,$7) "
        "ON CONFLICT DO NOTHING",
        tenant_id,
        workflow_id,
        proposal.proposal_id,
        digest,
        json.dumps(proposal.model_dump(mode="json")),
        json.dumps(verdict.model_dump(mode="json")),
        edited_by,
    )
    return digest


async def get_edit(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str, digest: str
) -> tuple[Proposal, Verdict] | None:
    row = await conn.fetchrow(
        "SELECT proposal::text AS proposal, verdict::text AS verdict FROM charter.proposal_edits "
        "WHERE tenant_id = $1 AND workflow_id = $2 AND proposal_id = $3 AND proposal_digest = $4",
        tenant_id,
        workflow_id,
        proposal_id,
        digest,
    )
    return _proposal_and_verdict(row) if row is not None else None


async def get_decision(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str, approver: str
) -> dict[str, Any] | None:
    """The decision an approver already recorded on a proposal, if any."""
    row = await conn.fetchrow(
        "SELECT outcome, proposal_digest, amendment_version, decided_at FROM charter.decisions "
        "WHERE tenant_id = $1 AND workflow_id = $2 AND proposal_id = $3 AND approver = $4 "
        "AND superseded_by IS NULL",
        tenant_id,
        workflow_id,
        proposal_id,
        approver,
    )
    return dict(row) if row else None


async def supersede_decisions(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str, by: str
) -> int:
    """The decisions on a proposal stop counting: what they approved no longer holds and the
    exception `by` asks again. They stay in the table, marked, for the audit trail."""
    done = await conn.execute(
        "UPDATE charter.decisions SET superseded_by = $4 WHERE tenant_id = $1 AND "
        "workflow_id = $2 AND proposal_id = $3 AND superseded_by IS NULL",
        tenant_id,
        workflow_id,
        proposal_id,
        by,
    )
    return int(done.split()[-1])


async def latest_exception(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> dict[str, Any] | None:
    """The exception a proposal's decision is asked on now: the last one opened for it (an
    act sends a proposal back with a new one when what was approved no longer holds)."""
    row = await conn.fetchrow(
        _SELECT_EXCEPTIONS + "AND workflow_id = $2 AND proposal_id = $3 "
        "ORDER BY opened_at DESC, exception_id DESC LIMIT 1",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return _exception(row) if row else None


async def sent_back(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> list[dict[str, Any]]:
    """What each exception an act opened for a proposal (a send-back) recorded of its check
    at execution, oldest first."""
    rows = await conn.fetch(
        "SELECT (context->'at_execution')::text AS at_execution FROM charter.exceptions "
        "WHERE tenant_id = $1 AND workflow_id = $2 AND proposal_id = $3 "
        "AND context ? 'at_execution' ORDER BY opened_at, exception_id",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return [json.loads(r["at_execution"]) for r in rows]


async def count_exceptions(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, proposal_id: str
) -> int:
    value = await conn.fetchval(
        "SELECT count(*) FROM charter.exceptions WHERE tenant_id = $1 AND workflow_id = $2 "
        "AND proposal_id = $3",
        tenant_id,
        workflow_id,
        proposal_id,
    )
    return int(value)


async def observed_at(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, run_id: str
) -> datetime | None:
    """When the run's observation was read, as its `observed` audit entry recorded it."""
    value = await _observed(conn, "snapshot->>'observed_at'", tenant_id, workflow_id, run_id)
    return datetime.fromisoformat(value) if value else None


async def observation(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, run_id: str
) -> Observation | None:
    """The run's observation, as its `observed` audit entry recorded it."""
    value = await _observed(conn, "snapshot", tenant_id, workflow_id, run_id)
    if value is None:
        return None
    return Observation.model_validate(json.loads(value) if isinstance(value, str) else value)


async def observed_rates(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, run_id: str
) -> tuple[list[ExchangeRate], datetime] | None:
    """The exchange rates the run's observation recorded, and when it was read."""
    value = await _observed(
        conn,
        "jsonb_build_object('rates', snapshot->'rates', 'at', snapshot->'observed_at')",
        tenant_id,
        workflow_id,
        run_id,
    )
    if value is None:
        return None
    found = json.loads(value) if isinstance(value, str) else value
    rates = [ExchangeRate.model_validate(r) for r in found["rates"] or []]
    return rates, datetime.fromisoformat(found["at"])


async def _observed(
    conn: asyncpg.Connection, column: str, tenant_id: str, workflow_id: str, run_id: str
) -> Any:
    """`column` (an expression of the functions above, never input) of the run's latest
    `observed` entry."""
    return await conn.fetchval(
        f"SELECT {column} FROM charter.audit_entries WHERE tenant_id = $1 AND workflow_id = $2 "
        "AND run_id = $3 AND kind = 'observed' ORDER BY seq DESC LIMIT 1",
        tenant_id,
        workflow_id,
        run_id,
    )


async def requested_by(conn: asyncpg.Connection, tenant_id: str, workflow_id: str) -> str | None:
    """Who asked for the run, as its `run_started` audit entry recorded it."""
    value = await conn.fetchval(
        "SELECT snapshot->>'requested_by' FROM charter.audit_entries WHERE tenant_id = $1 AND "
        "workflow_id = $2 AND kind = 'run_started' ORDER BY seq LIMIT 1",
        tenant_id,
        workflow_id,
    )
    return str(value) if value is not None else None
