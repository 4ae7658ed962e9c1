"""Each proposal's stated confidence beside what became of it, for calibration.

Nothing new is stored: the proposal (with its confidence), the gate's verdict, the
exception and the human decision are already recorded; this joins them.
"""

from __future__ import annotations

import asyncpg

from charter.governance.calibration import ProposalOutcome

_QUERY = """
SELECT p.agent, p.action, (p.proposal->>'confidence')::float8 AS confidence,
       p.outcome AS verdict, e.status AS exception_status, d.outcome AS decision,
       d.amendment_version IS NOT NULL AS amended
FROM charter.proposals p
LEFT JOIN charter.exceptions e
       ON e.tenant_id = p.tenant_id AND e.workflow_id = p.workflow_id
      AND e.proposal_id = p.proposal_id
LEFT JOIN LATERAL (
    SELECT outcome, amendment_version FROM charter.decisions d
    WHERE d.tenant_id = p.tenant_id AND d.workflow_id = p.workflow_id
      AND d.proposal_id = p.proposal_id
    ORDER BY d.decided_at DESC LIMIT 1
) d ON true
WHERE p.tenant_id = $1 AND ($2::text IS NULL OR p.agent = $2)
ORDER BY p.agent, p.action, confidence
"""


async def outcomes(
    conn: asyncpg.Connection, tenant_id: str, agent: str | None = None
) -> list[ProposalOutcome]:
    rows = await conn.fetch(_QUERY, tenant_id, agent)
    return [ProposalOutcome.from_record(dict(r)) for r in rows]
