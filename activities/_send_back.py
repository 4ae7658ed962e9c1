"""Sending an action back to a human: what it was judged on no longer holds, or a limit is
reached, so the act opens the exception a human decides instead of executing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from activities.exceptions import open_exception
from charter.services.execution import ExecutionCheck
from charter.storage import runs
from schemas import ActInput, Verdict

#: An exception opened by the act of a caller that sent no deadline waits this long.
DEFAULT_DECISION_WINDOW = timedelta(days=3)


async def send_back(
    conn: asyncpg.Connection,
    req: ActInput,
    check: ExecutionCheck,
    verdict: Verdict,
    **context: Any,
) -> str:
    """Open the exception a human decides instead, in the act's transaction; its id.

    A proposal already put to the humans (what they approved no longer holds) gets a new
    exception showing what changed, and the decisions on the old one stop counting.
    `context`: more for the human to see (a provider's error, say)."""
    run, proposal = req.run, req.proposal
    earlier = await runs.count_exceptions(
        conn, run.tenant_id, run.workflow_id, proposal.proposal_id
    )
    extra: dict[str, Any] = dict(context)
    exception_id = None
    if earlier:
        previous = await runs.latest_exception(
            conn, run.tenant_id, run.workflow_id, proposal.proposal_id
        )
        assert previous is not None
        base = runs.exception_id_for(run.workflow_id, proposal.proposal_id)
        exception_id = f"{base}-{earlier + 1}"
        await runs.supersede_decisions(
            conn, run.tenant_id, run.workflow_id, proposal.proposal_id, exception_id
        )
        extra["supersedes"] = previous["exception_id"]
    return await open_exception(
        conn,
        run,
        proposal,
        check.fresh,
        verdict,
        expires_at=req.decision_deadline or datetime.now(UTC) + DEFAULT_DECISION_WINDOW,
        actor="act",
        exception_id=exception_id,
        at_execution=check.record(),
        **extra,
    )
