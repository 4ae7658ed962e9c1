"""What the audit trail cannot prove: `charter audit verify` re-checks every decision entry.

A `decision` entry counts only if its statement passes the same full check `act` makes
(`proofs.check_recorded`) against the exception the entry names: signed by a key valid
then and never revoked for cause, bound to that exception's run, proposal and the
parameters the entry says were approved, recorded within its validity window, signed after
the exception opened, its nonce used by no other entry. A covering entry that copies a
statement signed for something else is named, however well it is chained.

A member's Slack id is judged as of the entry: the roster changes the trail records before
it (`member_added`, `member_slack_set`, the seed's `members_seeded`), so a legitimate
change of Slack id later does not turn earlier decisions into forgeries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from charter.audit.chain import ChainEntry
from charter.crypto.anchors import TrustAnchors
from charter.crypto.statements import StatementInvalid
from charter.services import law_proofs, owner_anchor, proofs
from charter.storage import Database, audit_trail, runs
from schemas import Proposal

#: Entries that say which Slack id a member holds from then on.
_SLACK_ID_KINDS = frozenset({"member_added", "member_slack_set"})


@dataclass(frozen=True)
class TrailEntry:
    """The fields of an audit entry the proofs are checked against."""

    seq: int
    kind: str
    occurred_at: str
    snapshot: Mapping[str, Any]


@dataclass
class _Reading:
    """What the entries read so far say: Slack ids held, nonces used, exceptions proven."""

    tenant_id: str
    slack_ids: dict[str, str | None] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    proven: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def learn_roster(self, entry: TrailEntry) -> None:
        snapshot = entry.snapshot
        if entry.kind in _SLACK_ID_KINDS and isinstance(snapshot.get("member_id"), str):
            self.slack_ids[snapshot["member_id"]] = snapshot.get("slack_user_id")
        elif entry.kind == "members_seeded":
            for member in snapshot.get("members") or []:
                if isinstance(member, dict) and isinstance(member.get("member_id"), str):
                    self.slack_ids[member["member_id"]] = member.get("slack_user_id")


async def audit_problems(
    conn: asyncpg.Connection, tenant_id: str, entries: Sequence[TrailEntry]
) -> list[str]:
    """Each `decision` entry whose statement does not pass the full check, and each approved
    exception or action executed on an approval with no verified `decision` entry behind it."""
    reading = _Reading(tenant_id)
    for entry in entries:
        reading.learn_roster(entry)
        if entry.kind == "decision":
            await _check_entry(conn, reading, entry)
    return reading.problems + await _unproven_outcomes(conn, tenant_id, reading.proven)


async def _check_entry(conn: asyncpg.Connection, reading: _Reading, entry: TrailEntry) -> None:
    where = f"{reading.tenant_id} seq {entry.seq}"
    snapshot = entry.snapshot
    text, signature = snapshot.get("statement"), snapshot.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str):
        reading.problems.append(f"{where}: decision without a signed statement")
        return
    try:
        exception_id, statement_nonce = await _verified_entry(conn, reading, entry, text, signature)
    except StatementInvalid as exc:
        reading.problems.append(f"{where}: decision statement does not verify: {exc}")
        return
    if statement_nonce in reading.nonces:
        reading.problems.append(f"{where}: decision statement replayed (its nonce was used before)")
        return
    reading.nonces.add(statement_nonce)
    decision = snapshot.get("decision") or {}
    if decision.get("outcome") == "approve":
        reading.proven.add(exception_id)


async def _verified_entry(
    conn: asyncpg.Connection, reading: _Reading, entry: TrailEntry, text: str, signature: str
) -> tuple[str, str]:
    """(exception id, nonce) of an entry whose statement passes the full check."""
    snapshot = entry.snapshot
    exception_id = snapshot.get("exception_id")
    exception = (
        await runs.get_exception(conn, reading.tenant_id, exception_id)
        if isinstance(exception_id, str)
        else None
    )
    if exception is None:
        raise StatementInvalid(f"the entry names no recorded exception ({exception_id!r})")
    run_id = await conn.fetchval(
        "SELECT run_id FROM charter.proposals WHERE tenant_id = $1 AND workflow_id = $2 AND "
        "proposal_id = $3",
        reading.tenant_id,
        exception["workflow_id"],
        exception["proposal_id"],
    )
    try:
        approved = Proposal.model_validate(snapshot.get("approved"))
        recorded_at = datetime.fromisoformat(entry.occurred_at)
    except (ValidationError, TypeError, ValueError):
        raise StatementInvalid("the entry's approved parameters or time cannot be read") from None
    binding = proofs.Binding(
        reading.tenant_id,
        exception["workflow_id"],
        str(run_id),
        exception["proposal_id"],
        runs.proposal_digest(approved),
    )
    decision = snapshot.get("decision") or {}
    recorded = proofs.Recorded(
        str(decision.get("approver")), str(decision.get("outcome")), text, signature, recorded_at
    )
    statement = await proofs.check_recorded(
        conn, binding, recorded, exception["opened_at"], _slack_ids_then(conn, reading)
    )
    return str(exception_id), statement.nonce


def _slack_ids_then(conn: asyncpg.Connection, reading: _Reading) -> proofs.SlackIdOf:
    """Members' Slack ids as the entries read so far left them (the roster's, for a member
    the trail has not mentioned)."""
    known = dict(reading.slack_ids)

    async def slack_id_of(member_id: str) -> str | None:
        if member_id in known:
            return known[member_id]
        return await proofs.member_slack_id(conn, reading.tenant_id, member_id)

    return slack_id_of


async def _unproven_outcomes(
    conn: asyncpg.Connection, tenant_id: str, proven: set[str]
) -> list[str]:
    problems = []
    for row in await conn.fetch(
        "SELECT exception_id FROM charter.exceptions WHERE tenant_id = $1 AND status = 'approved' "
        "ORDER BY exception_id",
        tenant_id,
    ):
        if row["exception_id"] not in proven:
            problems.append(
                f"{tenant_id}: exception {row['exception_id']} is approved but no verified "
                "decision entry records an approval"
            )
    for row in await conn.fetch(
        "SELECT idempotency_key, workflow_id, proposal_id, authorisation->>'exception_id' AS "
        "exception_id FROM charter.actions WHERE tenant_id = $1 AND "
        "authorisation->>'kind' = 'approval' ORDER BY executed_at",
        tenant_id,
    ):
        exception_id = row["exception_id"] or runs.exception_id_for(
            row["workflow_id"], row["proposal_id"]
        )
        if exception_id not in proven:
            problems.append(
                f"{tenant_id}: action {row['idempotency_key']} executed on an approval that no "
                "verified decision entry records"
            )
    return problems


async def tenant_proof_problems(
    db: Database, tenant_id: str, anchors: TrustAnchors | None = None
) -> list[str]:
    """Everything about the tenant's trail that no owner's key proves: decisions without a
    valid signed statement, approvals claimed without one, constitution versions nothing
    proves, and owner keys the tenant's trust anchor does not list (when one is configured).
    An entry that cannot be read is the chain report's to name (tenant and seq)."""
    async with db.tenant(tenant_id) as conn:
        entries = [
            TrailEntry(e.seq, e.kind, e.occurred_at, e.snapshot)
            async for e in audit_trail.readable_entries(conn, tenant_id)
            if isinstance(e, ChainEntry)
        ]
        problems = await audit_problems(conn, tenant_id, entries)
        problems += await law_proofs.unproven_versions(conn, tenant_id)
        if anchors is not None:
            # Verify names what it finds; only configured anchors are checked here.
            problems += await owner_anchor.unanchored_owner_keys(
                conn, tenant_id, anchors, development=True
            )
    return problems
