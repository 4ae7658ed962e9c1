"""Read: a full snapshot of the books through a connector's read-only interface."""

from __future__ import annotations

from temporalio import activity

from activities._connector_errors import activity_error
from activities._deps import Deps
from charter.connectors import ConnectorError, registry
from charter.runtime.faults import crash_point
from charter.storage import audit_trail, ledger
from schemas import Observation, ObserveInput


class ReadActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        # Read-scoped only: this activity cannot obtain a write credential.
        self._credentials = deps.credentials.scoped("read")

    @activity.defn(name="observe")
    async def observe(self, req: ObserveInput) -> Observation:
        run = req.run
        crash_point("observe")
        try:
            # Credentials first, in their own transaction: a refreshed OAuth token is stored
            # (encrypted) even if the read below fails, so a rotated refresh token is not lost.
            async with self._db.tenant(run.tenant_id) as conn:
                route = await registry.read_route(conn, run.tenant_id, run.agent)
                credentials = await registry.read_credentials(
                    self._credentials, conn, run.tenant_id, route
                )
            async with self._db.tenant(run.tenant_id) as conn:
                # The reader is the only object this activity hands the connector's data to,
                # and it has no write methods.
                reader = registry.reader(route, conn, run.tenant_id, credentials)
                observation = await reader.snapshot(run.agent, req.focus)
                # Beside the books, Charter's own ledger: what its agents already spent.
                observation = observation.model_copy(
                    update={
                        "spend": await ledger.snapshot(conn, run.tenant_id, observation.observed_at)
                    }
                )
                # In the read's own transaction: one commit for the read and its entry.
                await audit_trail.append(
                    conn,
                    run.tenant_id,
                    "observed",
                    observation.model_dump(mode="json"),
                    actor=f"agent:{run.agent}",
                    workflow_id=run.workflow_id,
                    run_id=run.run_id,
                )
        except ConnectorError as exc:
            raise activity_error(exc) from None
        return observation
