"""Read: a full snapshot of the books through a connector's read-only interface."""

from __future__ import annotations

from temporalio import activity

from activities._connector_errors import activity_error
from activities._deps import Deps
from charter.connectors import ConnectorError, registry
from charter.runtime.bulkheads import Unavailable
from charter.runtime.faults import crash_point
from charter.storage import audit_trail, exchange_rates, ledger
from charter.temporal.errors import CatalogueError
from schemas import Observation, ObserveInput
from schemas.errors import ErrorType


class ReadActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        # Read-scoped only: this activity cannot obtain a write credential.
        self._credentials = deps.credentials.scoped("read")
        self._bulkheads = deps.bulkheads

    @activity.defn(name="observe")
    async def observe(self, req: ObserveInput) -> Observation:
        run = req.run
        crash_point("observe")
        try:
            # The providers are asked with no transaction open; a refreshed OAuth token is
            # stored (encrypted) in a transaction of its own before it is used, so a rotated
            # refresh token is not lost if the read fails.
            observation = await registry.observe(
                self._credentials, self._db, self._bulkheads, run.tenant_id, run.agent, req.focus
            )
        except Unavailable as exc:
            raise CatalogueError(ErrorType.PROVIDER_UNAVAILABLE, str(exc)) from None
        except ConnectorError as exc:
            raise activity_error(exc) from None
        async with self._db.tenant(run.tenant_id) as conn:
            # Beside the books, Charter's own ledger (what its agents already spent) and the
            # owner's exchange rates the limits convert it with.
            observation = observation.model_copy(
                update={
                    "spend": await ledger.snapshot(conn, run.tenant_id, observation.observed_at),
                    "rates": await exchange_rates.current(conn, run.tenant_id),
                }
            )
            await audit_trail.append(
                conn,
                run.tenant_id,
                "observed",
                observation.model_dump(mode="json"),
                actor=f"agent:{run.agent}",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        return observation
