"""What the audit trail says about writes at a provider: attempts under a key, and the
sequence of a bill's payments.

An attempt is an `action_intent` committed under an idempotency key: it may have reached the
provider. It stays open (its outcome unknown) until a refusal closes it (`action_refused`:
nothing was written) or a result records the write. Every run paying the same bill shares
the key, so attempts are read across workflows. A bill's payment sequence is advanced by a
human only, with an audited `payment_sequence_advanced` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from charter.storage import audit_trail

SEQUENCE_ADVANCED = "payment_sequence_advanced"


@dataclass(frozen=True)
class Attempt:
    workflow_id: str | None
    attempt: int
    at: datetime


@dataclass(frozen=True)
class OpenAttempts:
    """Attempts before this one whose outcome nobody recorded."""

    attempts: tuple[Attempt, ...] = ()

    @property
    def first_at(self) -> datetime | None:
        return self.attempts[0].at if self.attempts else None

    @property
    def last_at(self) -> datetime | None:
        return self.attempts[-1].at if self.attempts else None


async def open_attempts(
    conn: asyncpg.Connection,
    tenant_id: str,
    key: str,
    *,
    workflow_id: str,
    attempt: int,
) -> OpenAttempts:
    """The attempts under `key` still open, other than this one (`workflow_id`, `attempt`)."""
    rows = await conn.fetch(
        "SELECT kind, workflow_id, snapshot ->> 'attempt' AS attempt, occurred_at "
        "FROM charter.audit_entries WHERE tenant_id = $1 "
        "AND kind IN ('action_intent', 'action_refused') "
        "AND snapshot ->> 'idempotency_key' = $2 ORDER BY seq",
        tenant_id,
        key,
    )
    found: list[Attempt] = []
    for row in rows:
        if row["kind"] == "action_refused":
            found = []  # nothing was written under the key by the attempts before it
            continue
        number = int(row["attempt"] or 0)
        if row["workflow_id"] == workflow_id and number == attempt:
            continue
        found.append(
            Attempt(row["workflow_id"], number, datetime.fromisoformat(row["occurred_at"]))
        )
    return OpenAttempts(tuple(found))


async def payment_sequence(
    conn: asyncpg.Connection, tenant_id: str, provider: str, bill_id: str
) -> int:
    """The sequence of the bill's current payment: 0 until a human advances it."""
    value = await conn.fetchval(
        "SELECT max((snapshot ->> 'sequence')::int) FROM charter.audit_entries "
        "WHERE tenant_id = $1 AND kind = $2 AND snapshot ->> 'provider' = $3 "
        "AND snapshot ->> 'bill_id' = $4",
        tenant_id,
        SEQUENCE_ADVANCED,
        provider,
        bill_id,
    )
    return int(value or 0)


async def advance_sequence(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    provider: str,
    bill_id: str,
    actor: str,
    reason: str,
) -> int:
    """Let the bill be paid again under a new key; audited, in the caller's transaction."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"{tenant_id}/payment-sequence/{provider}/{bill_id}",
    )
    sequence = await payment_sequence(conn, tenant_id, provider, bill_id) + 1
    snapshot = {"provider": provider, "bill_id": bill_id, "sequence": sequence, "reason": reason}
    await audit_trail.append(conn, tenant_id, SEQUENCE_ADVANCED, snapshot, actor=actor)
    return sequence


async def left_open(conn: asyncpg.Connection, tenant_id: str, key: str) -> bool:
    """Whether an intent under `key` came after the last entry that closed it: another run
    committed its intent after this payment's result, and found the payment made."""
    row = await conn.fetchrow(
        "SELECT max(seq) FILTER (WHERE kind = 'action_intent') AS intent, "
        "max(seq) FILTER (WHERE kind <> 'action_intent') AS closed "
        "FROM charter.audit_entries WHERE tenant_id = $1 "
        "AND kind IN ('action_intent', 'action_result', 'action_refused', 'action_reconciled') "
        "AND snapshot ->> 'idempotency_key' = $2",
        tenant_id,
        key,
    )
    return (
        row is not None
        and row["intent"] is not None
        and (row["closed"] is None or row["intent"] > row["closed"])
    )
