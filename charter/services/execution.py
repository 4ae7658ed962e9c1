"""The act activity's last check, in the transaction of the write intent.

Under a per-tenant spend lock and the books' row locks: re-read the facts the rules depend
on, re-judge the proposal under the pinned and the current version (`rejudge`), then reserve
its amount against every applicable limit of either version. Whatever the outcome, the
caller commits it with the intent (proceed) or with a new exception (decide), so that no
interleaving of runs, workers or retries can carry spend past a limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from charter.connectors.demo import facts_at_execution
from charter.governance import spend
from charter.governance.freshness import too_old
from charter.governance.rejudge import rejudge
from charter.storage import constitution_versions, ledger
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
    read: Observation | None = None,
    observed_at: datetime | None = None,
    max_age: timedelta | None = None,
) -> ExecutionCheck:
    """`shown`: the facts an approval was given on; None for an autonomous execution.
    `now`: the worker's clock, replaced by the database's once the spend lock is held.
    `read`: the facts as the tenant's providers show them now, read by the caller (they
    cannot be locked in this transaction); None re-reads the demo books under row locks.
    `observed_at`, `max_age`: when the run's observation was read, and how old it may be
    for an autonomous execution (`freshness`)."""
    tenant = run.tenant_id
    pinned = await constitution_versions.get(conn, tenant, verdict.constitution_version)
    current = await constitution_versions.get(conn, tenant)
    documents = [pinned.document, current.document]
    spends = any(proposal.action in spend.spending_actions(d) for d in documents)
    if spends:
        # Before any books row: every act of a tenant takes the locks in the same order.
        now = await ledger.lock(conn, tenant)
    fresh = (
        read if read is not None else await facts_at_execution(conn, tenant, run.agent, proposal)
    )
    snapshot = await ledger.snapshot(conn, tenant, now, exclude_key=key)
    fresh = fresh.model_copy(update={"spend": snapshot})
    judgement = rejudge(pinned, current, proposal, fresh, judged=verdict, shown=shown)
    if judgement.outcome != "proceed":
        return ExecutionCheck(judgement.outcome, judgement.reason, fresh, changed=judgement.changed)
    stale = (
        too_old(observed_at, now, max_age)
        if shown is None and observed_at is not None and max_age is not None
        else None
    )
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
    found = list(
        {
            (b.limit_id, b.limit, b.window, b.scope): b
            for d in documents
            for b in spend.breaches(
                d, proposal, agent=run.agent, payee=payee, snapshot=snapshot, autonomous=autonomous
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
