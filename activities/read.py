"""Read: a full snapshot of the books through a connector's read-only interface."""

from __future__ import annotations

from temporalio import activity

from activities._deps import Deps
from charter.connectors.demo import DemoBooksReader
from charter.storage import audit
from schemas import Observation, ObserveInput


class ReadActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db

    @activity.defn(name="observe")
    async def observe(self, req: ObserveInput) -> Observation:
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            # The reader is the only object this activity hands the connector's data to,
            # and it has no write methods.
            reader = DemoBooksReader(conn, run.tenant_id)
            observation = await reader.snapshot(run.agent, req.focus)
            await audit.append(
                conn,
                run.tenant_id,
                "observed",
                observation.model_dump(mode="json"),
                actor=f"agent:{run.agent}",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        return observation
