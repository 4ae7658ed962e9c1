"""Read: a full snapshot of the books through a connector's read-only interface."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._deps import Deps
from charter.connectors.demo import DemoBooksReader
from charter.connectors.demo_auth import READ_CONNECTORS, ConnectorAuthError, obtain
from charter.storage import audit
from charter.storage import spend as ledger
from schemas import Observation, ObserveInput
from schemas.errors import ErrorType


class CredentialUnavailable(ApplicationError):
    """The connector refused or no credential of the right scope exists. Ids only."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=ErrorType.CREDENTIAL_UNAVAILABLE, non_retryable=True)


class ReadActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        # Read-scoped only: this activity cannot obtain a write credential.
        self._credentials = deps.credentials.scoped("read")

    @activity.defn(name="observe")
    async def observe(self, req: ObserveInput) -> Observation:
        run = req.run
        try:
            # Credentials first, in their own transaction: a refreshed OAuth token is stored
            # (encrypted) even if the read below fails, so a rotated refresh token is not lost.
            async with self._db.tenant(run.tenant_id) as conn:
                credentials = {
                    connector: await obtain(self._credentials, conn, run.tenant_id, connector)
                    for connector in READ_CONNECTORS.get(run.agent, ())
                }
            async with self._db.tenant(run.tenant_id) as conn:
                # The reader is the only object this activity hands the connector's data to,
                # and it has no write methods.
                reader = DemoBooksReader(conn, run.tenant_id, credentials)
                observation = await reader.snapshot(run.agent, req.focus)
                # Beside the books, Charter's own ledger: what its agents already spent.
                observation = observation.model_copy(
                    update={
                        "spend": await ledger.snapshot(conn, run.tenant_id, observation.observed_at)
                    }
                )
        except ConnectorAuthError as exc:
            raise CredentialUnavailable(str(exc)) from None
        async with self._db.tenant(run.tenant_id) as conn:
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
