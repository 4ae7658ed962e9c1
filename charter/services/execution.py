"""The act activity's last check, in the transaction of the write intent.

Under a per-tenant spend lock and the books' row locks (`lock_and_read`, which takes them in
that order): re-read the facts the rules depend on through the connector's reader, re-judge
the proposal under the pinned and the current version (`rejudge`), then reserve its amount
against every applicable limit of either version. Whatever the outcome, the caller commits
it with the intent (proceed) or with a new exception (decide), so that no interleaving of
runs, workers or retries can carry spend past a limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from charter.connectors.base import FactsAtExecution
from charter.governance import spend
from charter.governance.exchange import Rates
from charter.governance.freshness import too_old
from charter.governance.rejudge import rejudge
from charter.storage import constitution_versions, ledger, runs
from schemas import (
    ConstitutionDocument,
    LimitBreach,
    Observation,
    Proposal,
    RunRef,
    SpendSnapshot,
    Verdict,
)

#: How long a reservation counts without its action executing: longer than one act attempt
#: (a retried attempt renews it), short enough that an abandoned one frees the limit soon.
RESERVATION_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class ExecutionCheck:
    outcome: Literal["proceed", "decide", "refuse"]
    reason: str
    fresh: Observation
    breaches: list[LimitBreach] = field(default_factory=list)
    changed: dict[str, Any] = field(default_factory=dict)
    reserved: bool = False

    def record(self) -> dict[str, Any]:
        """What the audit trail keeps of the check."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "reserved": self.reserved,
            "limits": [b.model_dump(mode="json") for b in self.breaches],
            "changed": self.changed,
            "facts_at": self.fresh.observed_at.isoformat(),
        }


async def check_and_reserve(
    conn: asyncpg.Connection,
    *,
    run: RunRef,
    proposal: Proposal,
    key: str,
    verdict: Verdict,
    shown: dict[str, Any] | None,
    now: datetime,
    reader: FactsAtExecution,
    observed_at: datetime | None = None,
    max_age: timedelta | None = None,
    tolerance: Mapping[str, Decimal] | None = None,
) -> ExecutionCheck:
    """`shown`: the facts an approval was given on; None for an autonomous execution.
    `now`: the worker's clock, replaced by the database's once the spend lock is held.
    `reader`: re-reads the facts at execution, in this transaction (`facts_at_execution`).
    `observed_at`, `max_age`: when the run's observation was read, and how old it may be
    for an autonomous execution (`freshness`). `tolerance`: how far the approvers let which
    shown facts move (`charter.services.tolerance`)."""
    tenant = run.tenant_id
    pinned = await constitution_versions.get(conn, tenant, verdict.constitution_version)
    current = await constitution_versions.get(conn, tenant)
    documents = [pinned.document, current.document]
    spends = any(proposal.action in spend.spending_actions(d) for d in documents)
    fresh, now = await lock_and_read(conn, run, proposal, reader, spends=spends, now=now)
    snapshot = await ledger.snapshot(conn, tenant, now, exclude_key=key)
    fresh = fresh.model_copy(update={"spend": snapshot})
    judgement = rejudge(
        pinned, current, proposal, fresh, judged=verdict, shown=shown, tolerance=tolerance
    )
    if judgement.outcome != "proceed":
        return ExecutionCheck(judgement.outcome, judgement.reason, fresh, changed=judgement.changed)
    stale = _stale(observed_at, now, max_age) if shown is None else None
    if stale is not None:
        aged = {"observed_at": observed_at.isoformat() if observed_at else None}
        return ExecutionCheck("decide", stale, fresh, changed=aged)
    if not spends or proposal.amount is None:
        return ExecutionCheck("proceed", "", fresh)
    invoice = next((i for i in fresh.invoices if i.invoice_id == proposal.reference), None)
    limited = await reserve_within_limits(
        conn,
        documents,
        run=run,
        proposal=proposal,
        key=key,
        payee=spend.payee_of(proposal, invoice),
        snapshot=snapshot,
        autonomous=shown is None,
        now=now,
    )
    return ExecutionCheck(
        limited.outcome, limited.reason, fresh, breaches=limited.breaches, reserved=limited.reserved
    )


def _stale(observed_at: datetime | None, now: datetime, max_age: timedelta | None) -> str | None:
    """Why the run's observation is too old for an autonomous execution, if it is."""
    if observed_at is None or max_age is None:
        return None
    return too_old(observed_at, now, max_age)


async def lock_and_read(
    conn: asyncpg.Connection,
    run: RunRef,
    proposal: Proposal,
    reader: FactsAtExecution,
    *,
    spends: bool,
    now: datetime,
) -> tuple[Observation, datetime]:
    """Take an act's locks in the one order every act of a tenant takes them, and read the
    facts under them: the tenant's spend lock first when the action spends, then the books'
    rows, which the reader locks as it re-reads them. No two acts of a tenant then each hold
    a lock the other waits for. Returns the facts and the clock, the database's once the
    spend lock is held (reservations are stamped with it, in the order they were made)."""
    if spends:
        now = await ledger.lock(conn, run.tenant_id)
    return await reader.facts_at_execution(run.agent, proposal), now


async def _recorded_rates(
    conn: asyncpg.Connection,
    run: RunRef,
    documents: list[ConstitutionDocument],
    proposal: Proposal,
    snapshot: SpendSnapshot,
) -> Rates:
    """The exchange rates the run's observation recorded, read only when a limit counts
    money in another currency than its own (none recorded: nothing converts)."""
    if not any(spend.mixes_currencies(d, proposal, snapshot) for d in documents):
        return Rates([], snapshot.as_of)
    recorded = await runs.observed_rates(conn, run.tenant_id, run.workflow_id, run.run_id)
    return Rates(*recorded) if recorded else Rates([], snapshot.as_of)


@dataclass(frozen=True)
class Reservation:
    outcome: Literal["proceed", "decide", "refuse"]
    reason: str
    breaches: list[LimitBreach]
    reserved: bool


async def reserve_within_limits(
    conn: asyncpg.Connection,
    documents: list[ConstitutionDocument],
    *,
    run: RunRef,
    proposal: Proposal,
    key: str,
    payee: str,
    snapshot: SpendSnapshot,
    autonomous: bool,
    now: datetime,
) -> Reservation:
    """Reserve the proposal's amount if it fits under every limit of every document.

    The caller holds the tenant's spend lock and took `snapshot` under it. Past an
    autonomous limit the proposal goes to a human (or is refused where the limit denies);
    an approved proposal may go past only limits that let approvals exceed them.
    """
    rates = await _recorded_rates(conn, run, documents, proposal, snapshot)
    found = list(
        {
            (b.limit_id, b.limit, b.window, b.scope): b
            for d in documents
            for b in spend.breaches(
                d,
                proposal,
                agent=run.agent,
                payee=payee,
                snapshot=snapshot,
                autonomous=autonomous,
                rates=rates,
            )
        }.values()
    )
    if autonomous and found:
        final = any(b.on_exceed == "deny" for b in found)
        reason = "; ".join(spend.describe(b) for b in found)
        return Reservation("refuse" if final else "decide", reason, found, False)
    beyond = [b for b in found if b.on_exceed == "deny" or not b.approvals_may_exceed]
    if beyond:
        return Reservation("refuse", "; ".join(spend.describe(b) for b in beyond), found, False)
    assert proposal.amount is not None
    await ledger.reserve(
        conn,
        run.tenant_id,
        key,
        workflow_id=run.workflow_id,
        proposal_id=proposal.proposal_id,
        agent=run.agent,
        action=proposal.action,
        payee=payee,
        amount=proposal.amount,
        currency=proposal.currency,
        autonomous=autonomous,
        now=now,
        ttl=RESERVATION_TTL,
    )
    return Reservation("proceed", "", found, True)
