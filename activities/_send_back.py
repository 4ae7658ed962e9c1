"""Sending an action back to a human: what it was judged on no longer holds, or a limit is
reached, so the act opens the exception a human decides instead of executing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from activities._audit import record
from activities.exceptions import open_exception
from charter.services.execution import ExecutionCheck
from charter.storage import runs
from charter.temporal.errors import CatalogueError
from schemas import ActInput, Verdict
from schemas.errors import ErrorType

#: An exception opened by the act of a caller that sent no deadline waits this long.
DEFAULT_DECISION_WINDOW = timedelta(days=3)
#: How often one proposal may be sent back before it is closed as unstable.
DEFAULT_MAX_SEND_BACKS = 3


class FactsUnstable(CatalogueError):
    """Sent back as often as allowed, and its facts moved again: closed, not executed."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.FACTS_UNSTABLE, message)


def _unstable(earlier: list[dict[str, Any]], check: ExecutionCheck, bound: int) -> str:
    """The notice: every change that sent the proposal back, then the one that closed it."""
    moves = [*(e.get("reason", "") for e in earlier), check.reason]
    listed = "; ".join(f"{n}. {move}" for n, move in enumerate(moves, start=1))
    return (
        f"closed as facts_unstable: sent back {len(earlier)} times (at most {bound}) and "
        f"the facts moved again: {listed}"
    )


@dataclass(frozen=True)
class Unstable:
    """A proposal closed instead of sent back once more: the notice, and the exception the
    humans last decided (whose card and inbox page show the closure)."""

    notice: str
    exception_id: str

    def error(self) -> FactsUnstable:
        return FactsUnstable(self.notice)


async def close_if_unstable(
    conn: asyncpg.Connection, req: ActInput, check: ExecutionCheck, bound: int
) -> Unstable | None:
    """Close the proposal if it was sent back `bound` times already, in the act's
    transaction: a `facts_unstable` audit entry listing every change, naming the exception
    last decided. A loop of approvals overtaken by other runs so ends with a human told, not
    with one more approval asked for. None: it may be sent back again."""
    run, proposal = req.run, req.proposal
    before = await runs.sent_back(conn, run.tenant_id, run.workflow_id, proposal.proposal_id)
    if len(before) < bound:
        return None
    latest = await runs.latest_exception(conn, run.tenant_id, run.workflow_id, proposal.proposal_id)
    assert latest is not None  # sent back `bound` >= 1 times: its exceptions exist
    closed = Unstable(_unstable(before, check, bound), latest["exception_id"])
    await record(
        conn,
        run,
        "facts_unstable",
        {
            "proposal_id": proposal.proposal_id,
            "exception_id": closed.exception_id,
            "notice": closed.notice,
            "at_execution": check.record(),
        },
        actor="act",
    )
    return closed


async def send_back(
    conn: asyncpg.Connection,
    req: ActInput,
    check: ExecutionCheck,
    verdict: Verdict,
    **context: Any,
) -> str:
    """Open the exception a human decides instead, in the act's transaction; its id.

    A proposal already put to the humans (what they approved no longer holds) gets a new
    exception showing what changed, and the decisions on the old one stop counting (how
    often is bounded by the caller, `close_if_unstable`). `context`: more for the human to
    see (a provider's error, say)."""
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
