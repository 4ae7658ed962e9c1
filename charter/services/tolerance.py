"""How far the approvers of a proposal let its facts move before their approval stops holding.

Each approver may sign a tolerance (`DecisionStatement.tolerance`); the approval holds a
move only as far as every approver allowed it: a fact some approver did not name may not
move at all, and of several fractions the smallest binds. The statements were verified when
the decisions were recorded; here they are only read.
"""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from charter.crypto import statements
from charter.storage import runs
from schemas import Proposal, RunRef


def common(tolerances: list[dict[str, Decimal] | None]) -> dict[str, Decimal] | None:
    """What every approver allowed; None when any approver allowed nothing."""
    if not tolerances or any(not t for t in tolerances):
        return None
    shared = set.intersection(*(set(t or {}) for t in tolerances))
    return {name: min((t or {})[name] for t in tolerances) for name in sorted(shared)} or None


async def approved_tolerance(
    conn: asyncpg.Connection, run: RunRef, proposal: Proposal
) -> dict[str, Decimal] | None:
    """The tolerance of the approvals that authorise `proposal` now, in the caller's
    transaction."""
    texts = await runs.approval_statements(
        conn, run.tenant_id, run.workflow_id, proposal.proposal_id, runs.proposal_digest(proposal)
    )
    return common([statements.parse(text).tolerance for text in texts])
