"""An audit entry about a step of a run, in the caller's transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from charter.storage import audit_trail
from schemas import RunRef


async def record(
    conn: asyncpg.Connection, run: RunRef, kind: str, snapshot: dict[str, Any], *, actor: str
) -> None:
    """Append `kind` to the run's tenant's chain, tagged with the run."""
    await audit_trail.append(
        conn,
        run.tenant_id,
        kind,
        snapshot,
        actor=actor,
        workflow_id=run.workflow_id,
        run_id=run.run_id,
    )
