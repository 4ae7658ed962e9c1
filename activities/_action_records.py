"""What the act activity records of an action: its result, its refusal, its reservation freed.

Each in the caller's transaction: the result with the write, so that a retried attempt finds
the action done; a refusal with the release of the action's reservation, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from activities._audit import record
from activities._leases import WriteLease
from charter.storage import actions, leases, ledger, provider_writes
from charter.temporal.errors import CatalogueError
from schemas import ActInput, ActionResult, Authorisation, Proposal, RunRef
from schemas.errors import ErrorType


@dataclass(frozen=True)
class Execution:
    """An action the provider holds: on which authorisation, its reference there, when, and
    the actor that wrote it (or found it)."""

    authorisation: Authorisation
    reference: str
    executed_at: datetime
    actor: str


async def record_executed(
    conn: asyncpg.Connection, req: ActInput, key: str, execution: Execution
) -> None:
    """Turn the action's reservation into executed spend, then record the result."""
    try:
        # The ledger first: its refusal must roll back before anything is recorded.
        await ledger.mark_executed(conn, req.run.tenant_id, key)
    except ledger.ReservationLapsed as exc:
        # Rolls the write back; the retried attempt reserves (and re-judges) anew.
        raise CatalogueError(ErrorType.RESERVATION_LAPSED, str(exc)) from None
    await record_result(conn, req, key, execution)


async def record_provider_write(
    conn: asyncpg.Connection, req: ActInput, key: str, execution: Execution, lease: WriteLease
) -> None:
    """Record a write the provider made under `key`, in a transaction that checks the lease.

    The money moved, whatever happened here meanwhile: a reservation that lapsed while the
    call was in flight is counted as executed spend all the same, and a lease taken over by
    another attempt (this one's lapsed) does not stop the record, since the provider holds
    one write under the key. Whoever records second finds the first's row."""
    run = req.run
    held = await leases.locked(conn, run.tenant_id, lease.subject)
    ours = held is not None and held.holder == lease.holder
    extra: dict[str, Any] = {} if ours else {"lease_taken_over": True}
    try:
        await ledger.mark_executed(conn, run.tenant_id, key)
    except ledger.ReservationLapsed:
        await ledger.record_moved(conn, run.tenant_id, key)
        extra["reservation_lapsed"] = True
    await record_result(conn, req, key, execution, extra=extra or None)
    await leases.settle(conn, run.tenant_id, lease.subject, key)


async def record_result(
    conn: asyncpg.Connection,
    req: ActInput,
    key: str,
    execution: Execution,
    extra: dict[str, Any] | None = None,
) -> None:
    """The action row and `action_result`, in the write's transaction."""
    run = req.run
    recorded = await actions.record_result(
        conn,
        tenant_id=run.tenant_id,
        idempotency_key=key,
        workflow_id=run.workflow_id,
        run_id=run.run_id,
        proposal=req.proposal,
        authorisation=execution.authorisation,
        reference=execution.reference,
        executed_at=execution.executed_at,
        actor=execution.actor,
        extra=extra,
    )
    if not recorded:
        # A concurrent attempt won; roll this one back by raising, then report theirs.
        raise CatalogueError(ErrorType.CONCURRENT, "concurrent execution detected; retrying")


def action_result(req: ActInput, key: str, execution: Execution) -> ActionResult:
    """What the act returns for the execution it recorded."""
    return ActionResult(
        proposal_id=req.proposal.proposal_id,
        idempotency_key=key,
        status="executed",
        connector_reference=execution.reference,
        executed_at=execution.executed_at,
    )


async def close_found_executed(
    conn: asyncpg.Connection, run: RunRef, key: str, existing: Any
) -> None:
    """Close an intent committed after the payment under `key` was recorded (every run
    paying the bill shares the key): it found the payment made and made nothing."""
    if await provider_writes.left_open(conn, run.tenant_id, key):
        snapshot = {
            "idempotency_key": key,
            "connector_reference": existing["connector_reference"],
            "status": "already_executed",
        }
        await record(conn, run, "action_reconciled", snapshot, actor="act")


def already_executed(proposal: Proposal, key: str, existing: Any) -> ActionResult:
    """What an earlier attempt recorded under `key` (its action row)."""
    return ActionResult(
        proposal_id=proposal.proposal_id,
        idempotency_key=key,
        status="already_executed",
        connector_reference=existing["connector_reference"],
        executed_at=existing["executed_at"],
    )


async def record_refusal(
    conn: asyncpg.Connection, req: ActInput, key: str, refusal: dict[str, Any], *, actor: str
) -> None:
    """`action_refused`: the action will not execute, and its reservation is freed, once."""
    await release(conn, req, key)
    snapshot = {"idempotency_key": key, "status": "refused", **refusal}
    await record(conn, req.run, "action_refused", snapshot, actor=actor)


async def release(conn: asyncpg.Connection, req: ActInput, key: str) -> None:
    """Free the action's reservation, once: the action will not execute."""
    run = req.run
    if await ledger.release(conn, run.tenant_id, key, datetime.now(UTC)):
        snapshot = {"idempotency_key": key, "proposal_id": req.proposal.proposal_id}
        await record(conn, run, "reservation_released", snapshot, actor="act")
