"""Record the gate's verdict; open, remind and expire exceptions."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg
from temporalio import activity

from activities._audit import record
from activities._deps import Deps
from activities._notices import notify
from charter.governance.facts import facts_for
from charter.storage import runs
from charter.temporal.errors import CatalogueError
from schemas import (
    ExceptionEventInput,
    Observation,
    Proposal,
    RecordVerdictInput,
    RecordVerdictsInput,
    RunRef,
    Verdict,
    VerdictRecord,
    VerdictRecords,
)
from schemas.errors import ErrorType


async def open_exception(
    conn: asyncpg.Connection,
    run: RunRef,
    proposal: Proposal,
    observation: Observation,
    verdict: Verdict,
    *,
    expires_at: datetime,
    actor: str,
    exception_id: str | None = None,
    **extra: Any,
) -> str:
    """Open the exception of a proposal with everything a human decides on (the observed
    facts, the proposal, the verdict, and `extra`), audited in the caller's transaction.
    `exception_id`: a proposal's later exception, asked anew; else its first."""
    exception_id = exception_id or runs.exception_id_for(run.workflow_id, proposal.proposal_id)
    facts = facts_for(proposal, observation)
    facts.pop("accounts", None)
    context = {
        "tenant_id": run.tenant_id,
        "agent": run.agent,
        "observed": facts,
        "observed_at": observation.observed_at.isoformat(),
        "proposal": proposal.model_dump(mode="json"),
        "verdict": verdict.model_dump(mode="json"),
        **extra,
    }
    await runs.open_exception(
        conn,
        tenant_id=run.tenant_id,
        exception_id=exception_id,
        workflow_id=run.workflow_id,
        proposal_id=proposal.proposal_id,
        agent=run.agent,
        context=context,
        expires_at=expires_at,
    )
    opened = {"exception_id": exception_id, "expires_at": expires_at.isoformat(), **context}
    await record(conn, run, "exception_opened", opened, actor=actor)
    return exception_id


class ExceptionActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier

    async def _record_verdict(
        self,
        conn: asyncpg.Connection,
        run: RunRef,
        proposal: Proposal,
        verdict: Verdict,
        observation: Observation,
        expires_at: datetime | None,
    ) -> str | None:
        """The proposal row, its audited verdict and, escalated, its exception, in the
        caller's transaction. Returns the exception's id, if one was opened."""
        await runs.save_proposal(
            conn,
            tenant_id=run.tenant_id,
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            agent=run.agent,
            proposal=proposal,
            verdict=verdict,
        )
        judged = {
            "proposal": proposal.model_dump(mode="json"),
            "verdict": verdict.model_dump(mode="json"),
        }
        await record(conn, run, "gate_verdict", judged, actor="gate")
        if verdict.outcome != "escalate":
            return None
        if expires_at is None:
            raise CatalogueError(ErrorType.INVALID_ACTIVITY_INPUT, "an escalation needs an expiry")
        return await open_exception(
            conn,
            run,
            proposal,
            observation,
            verdict,
            expires_at=expires_at,
            actor="gate",
        )

    @activity.defn(name="record_verdict")
    async def record_verdict(self, req: RecordVerdictInput) -> VerdictRecord:
        """One verdict (older runs: one call per proposal)."""
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            exception_id = await self._record_verdict(
                conn, run, req.proposal, req.verdict, req.observation, req.expires_at
            )
        if exception_id is not None:
            await notify(self._notifier, "opened", run, exception_id)
        return VerdictRecord(exception_id=exception_id)

    @activity.defn(name="record_verdicts")
    async def record_verdicts(self, req: RecordVerdictsInput) -> VerdictRecords:
        """Every verdict of a run in one transaction: the chain gets them in gating order,
        all or none, and a retry finds none of them half written."""
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            if req.gated and await runs.proposal_recorded(
                conn, run.tenant_id, run.workflow_id, run.run_id, req.gated[0].proposal.proposal_id
            ):
                # Run again after its commit (a local activity is, when the workflow task it
                # ran in was lost): the transaction wrote all or none, so all are there, and
                # nothing is written twice. Exception ids are derived, not stored, per proposal.
                opened = [
                    runs.exception_id_for(run.workflow_id, g.proposal.proposal_id)
                    if g.verdict.outcome == "escalate"
                    else None
                    for g in req.gated
                ]
            else:
                opened = [
                    await self._record_verdict(
                        conn, run, g.proposal, g.verdict, req.observation, g.expires_at
                    )
                    for g in req.gated
                ]
        # The cards go out once everything they point at has committed; side by side, so
        # a slow chat costs one delivery timeout, not one per exception.
        await asyncio.gather(
            *(notify(self._notifier, "opened", run, e) for e in opened if e is not None)
        )
        return VerdictRecords(records=[VerdictRecord(exception_id=e) for e in opened])

    @activity.defn(name="record_exception_event")
    async def record_exception_event(self, req: ExceptionEventInput) -> None:
        run = req.run
        if req.event not in ("reminder", "expired"):
            raise CatalogueError(
                ErrorType.INVALID_ACTIVITY_INPUT, f"unknown exception event {req.event!r}"
            )
        async with self._db.tenant(run.tenant_id) as conn:
            if req.event == "expired":
                await runs.close_exception(conn, run.tenant_id, req.exception_id, "expired")
            event = {
                "exception_id": req.exception_id,
                "proposal_id": req.proposal_id,
                "note": "Expired without a decision: nothing was executed."
                if req.event == "expired"
                else "Still awaiting a decision.",
            }
            await record(conn, run, "exception_" + req.event, event, actor="workflow")
        await notify(
            self._notifier,
            "expired" if req.event == "expired" else "reminder",
            run,
            req.exception_id,
        )
