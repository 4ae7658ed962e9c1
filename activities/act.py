"""Act: execute an authorised proposal exactly once through the connector's write interface.

Defence in depth: this activity does not trust its caller. It refuses unless the database
holds an auto-execute verdict for exactly this proposal, or approvals of exactly this
proposal by members who are still authorised, each proven by a signed statement
(`charter.services.authorisation`). In named steps, each in its own transaction:

1. settle what an earlier attempt left: its result, or the write its intent made at the
   provider (money that moved is recorded as moved before anything is judged again);
2. authorise, judge and reserve at the moment of execution, and commit the write intent
   (or send the proposal back to a human, or refuse it);
3. obtain the write credential, only now that the action is authorised;
4. perform through the connector, and record the result in the write's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._action_records import (
    Execution,
    action_result,
    already_executed,
    record_executed,
    record_refusal,
    record_result,
)
from activities._audit import record
from activities._connector_errors import activity_error
from activities._deps import Deps
from activities._notices import notify
from activities._provider_writes import find_earlier, perform
from activities._send_back import send_back
from charter.connectors import (
    ActionRefusedByBooks,
    ConnectorAuthError,
    ConnectorError,
    UnsupportedAction,
    registry,
)
from charter.connectors.registry import WriteRoute
from charter.runtime.faults import crash_point
from charter.services.authorisation import AuthorisationRefused, authorise
from charter.services.execution import ExecutionCheck, check_and_reserve
from charter.services.tolerance import approved_tolerance
from charter.storage import actions, ledger, runs
from charter.storage.credential_vault import Credential, ScopedCredentials
from charter.temporal.errors import CatalogueError
from schemas import (
    ActInput,
    ActionResult,
    ApprovalAuthorisation,
    Authorisation,
    GateAuthorisation,
    Observation,
)
from schemas.errors import ErrorType


class NotAuthorised(CatalogueError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.NOT_AUTHORISED, message)


class BackToHumans(CatalogueError):
    """The act did not execute: what it was judged on no longer holds, or a limit is
    reached, and an exception now waits for a human (its id is the first detail)."""

    def __init__(self, message: str, exception_id: str) -> None:
        super().__init__(ErrorType.BACK_TO_HUMANS, message, exception_id)


class RefusedAtExecution(CatalogueError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.REFUSED_AT_EXECUTION, message)


#: Final refusals recorded where they are made: the books' beside the intent it closes, a
#: send-back as the exception it opens. Every other final refusal is audited on its way out.
_RECORDED_WHERE_MADE = (ErrorType.ACTION_REFUSED_BY_BOOKS, ErrorType.BACK_TO_HUMANS)


@dataclass(frozen=True)
class Intent:
    """A committed write intent: what authorised the action, and what it was judged on."""

    authorisation: Authorisation
    check: ExecutionCheck


class ActActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier
        self._max_observation_age = deps.max_observation_age
        self._max_send_backs = deps.max_send_backs
        # Write-scoped credentials are obtained here only, and only after authorisation.
        self._credentials = deps.credentials.scoped("write")
        # Read-scoped ones too, to re-read the facts at the providers before acting.
        self._readers = deps.credentials.scoped("read")

    @activity.defn(name="act")
    async def act(self, req: ActInput) -> ActionResult:
        key = runs.idempotency_key_for(req.run.workflow_id, req.proposal)
        try:
            return await self._act(req, key)
        except ApplicationError as exc:
            if exc.non_retryable and exc.type not in _RECORDED_WHERE_MADE:
                # A final refusal is a step of the run too: audit it.
                await self._record_refusal(req, key, exc)
            raise

    async def _act(self, req: ActInput, key: str) -> ActionResult:
        settled = await self._settle_earlier_attempt(req, key)
        if settled is not None:
            return settled
        intent = await self._commit_intent(req, key)
        crash_point("intent-committed")
        try:
            route, credential = await self._route_and_credential(self._credentials, req)
        except (UnsupportedAction, ConnectorAuthError) as exc:
            raise activity_error(exc) from None
        return await self._perform_and_record(req, key, intent, route, credential)

    async def _settle_earlier_attempt(self, req: ActInput, key: str) -> ActionResult | None:
        """What an earlier attempt left under `key`: its recorded result, or the write its
        committed intent made at the provider; None when there is nothing to settle.

        An attempt cut short after its intent may have reached the provider although nothing
        here says so. Money that moved is recorded as moved before anything is judged again:
        fresh facts would now show the bill paid, or a spend cap reached by this very
        payment, and send back what already happened."""
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            existing = await actions.executed(conn, run.tenant_id, key)
            if existing is not None:
                return already_executed(req.proposal, key, existing)
            earlier = await actions.intended_authorisation(
                conn, run.tenant_id, run.workflow_id, key
            )
        if earlier is None:
            return None
        return await self._found_at_provider(req, key, earlier)

    async def _found_at_provider(
        self, req: ActInput, key: str, authorisation: Authorisation
    ) -> ActionResult | None:
        """Record an earlier attempt's write that the provider holds under `key`, on the
        authorisation its intent committed; None when the provider holds none (or cannot
        be asked with a read credential: then the perform step asks before it creates)."""
        run, proposal = req.run, req.proposal
        try:
            route, credential = await self._route_and_credential(self._readers, req)
        except (UnsupportedAction, ConnectorAuthError):
            return None
        finder = registry.lookup(route, credential)
        if finder is None:
            return None
        async with self._db.tenant(run.tenant_id) as conn:
            await actions.take_turn(conn, run.tenant_id, proposal, key)
            existing = await actions.executed(conn, run.tenant_id, key)
            if existing is not None:
                return already_executed(proposal, key, existing)
            reference = await find_earlier(finder, key)
            if reference is None:
                return None
            execution = Execution(
                authorisation, reference, datetime.now(UTC), f"connector:{finder.name}"
            )
            await ledger.record_moved(conn, run.tenant_id, key)
            found_after = {"found_after_attempt": activity.info().attempt - 1}
            await record_result(conn, req, key, execution, extra=found_after)
        return await self._executed(req, key, execution)

    async def _commit_intent(self, req: ActInput, key: str) -> Intent:
        """Authorise, judge and reserve, and commit the write-ahead intent, in one
        transaction. An action judged now to need a human is sent back instead (the
        exception committed, then `BackToHumans` raised); one that may not execute is
        refused (`RefusedAtExecution`, nothing committed)."""
        run = req.run
        read_before = await self._facts_from_providers(req)
        async with self._db.tenant(run.tenant_id) as conn:
            authorisation = await _authorise(conn, req)
            check = await self._judge_and_reserve(conn, req, key, authorisation, read_before)
            if check.outcome == "refuse":
                raise RefusedAtExecution(f"act refused at execution: {check.reason}")
            intent = Intent(authorisation, check)
            sent_back = None
            if check.outcome == "decide":
                sent_back = await send_back(
                    conn, req, check, authorisation.verdict, bound=self._max_send_backs
                )
            else:
                await _record_intent(conn, req, key, intent)
        if sent_back is not None:
            await notify(self._notifier, "opened", run, sent_back)
            raise BackToHumans(f"sent back to a human: {check.reason}", sent_back)
        return intent

    async def _facts_from_providers(self, req: ActInput) -> Observation | None:
        """The proposal's records as the tenant's providers show them now, read before the
        intent's transaction opens (no provider call while it holds the spend lock); None
        when the demo books hold them."""
        run = req.run
        try:
            return await registry.facts_from_providers(
                self._readers, self._db, run.tenant_id, run.agent, req.proposal
            )
        except ConnectorError as exc:
            raise activity_error(exc) from None

    async def _judge_and_reserve(
        self,
        conn: asyncpg.Connection,
        req: ActInput,
        key: str,
        authorisation: Authorisation,
        read_before: Observation | None,
    ) -> ExecutionCheck:
        """The facts and the law of this moment, and the limits, in the intent's transaction."""
        run = req.run
        autonomous = isinstance(authorisation, GateAuthorisation)
        reader = registry.reader_at_execution(conn, run.tenant_id, read_before)
        try:
            return await check_and_reserve(
                conn,
                run=run,
                proposal=req.proposal,
                key=key,
                verdict=authorisation.judged,
                shown=None if autonomous else await _shown(conn, req),
                now=datetime.now(UTC),
                reader=reader,
                observed_at=await runs.observed_at(conn, run.tenant_id, run.workflow_id, run.run_id)
                if autonomous
                else None,
                max_age=self._max_observation_age,
                tolerance=None if autonomous else await approved_tolerance(conn, run, req.proposal),
            )
        except ConnectorError as exc:
            raise activity_error(exc) from None

    async def _route_and_credential(
        self, holder: ScopedCredentials, req: ActInput
    ) -> tuple[WriteRoute, Credential]:
        """Who performs the action, and the credential of `holder`'s scope it takes, in their
        own transaction so that a refreshed OAuth token is kept whatever happens next."""
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            route = await registry.write_route(conn, run.tenant_id, req.proposal.action)
            credential = await registry.obtain(
                holder, conn, run.tenant_id, route.credential_connector
            )
        return route, credential

    async def _perform_and_record(
        self,
        req: ActInput,
        key: str,
        intent: Intent,
        route: WriteRoute,
        credential: Credential,
    ) -> ActionResult:
        """Execute, and record the action row (the idempotency guard) and the result, in the
        write's transaction. The books' refusal, made before they wrote anything, is
        committed beside the intent it closes, then raised: no retry can change it."""
        run, proposal = req.run, req.proposal
        refused: ActionRefusedByBooks | None = None
        async with self._db.tenant(run.tenant_id) as conn:
            await actions.take_turn(conn, run.tenant_id, proposal, key)
            writer = registry.writer(
                route, conn, run.tenant_id, credential, judged=intent.check.fresh
            )
            actor = f"connector:{writer.name}"
            try:
                reference = await perform(writer, proposal, key)
                crash_point("connector-wrote")
            except ActionRefusedByBooks as exc:
                refused = exc
                await record_refusal(conn, req, key, {"reason": str(exc)}, actor=actor)
            else:
                execution = Execution(intent.authorisation, reference, datetime.now(UTC), actor)
                await record_executed(conn, req, key, execution)
        if refused is not None:
            raise CatalogueError(ErrorType.ACTION_REFUSED_BY_BOOKS, str(refused))
        return await self._executed(req, key, execution)

    async def _executed(self, req: ActInput, key: str, execution: Execution) -> ActionResult:
        authorisation = execution.authorisation
        if isinstance(authorisation, ApprovalAuthorisation):
            # Committed: the exception's card can say that the approved action executed.
            await notify(self._notifier, "executed", req.run, authorisation.exception_id)
        return action_result(req, key, execution)

    async def _record_refusal(self, req: ActInput, key: str, exc: ApplicationError) -> None:
        refusal = {
            "error": exc.type,
            "reason": exc.message,
            "proposal": req.proposal.model_dump(mode="json"),
        }
        async with self._db.tenant(req.run.tenant_id) as conn:
            await record_refusal(conn, req, key, refusal, actor="act")


async def _authorise(conn: asyncpg.Connection, req: ActInput) -> Authorisation:
    try:
        return await authorise(conn, req.run, req.proposal)
    except AuthorisationRefused as exc:
        raise NotAuthorised(str(exc)) from None


async def _shown(conn: asyncpg.Connection, req: ActInput) -> dict[str, Any]:
    """The facts the exception showed its approvers, as they were then."""
    run = req.run
    exception = await runs.latest_exception(
        conn, run.tenant_id, run.workflow_id, req.proposal.proposal_id
    )
    observed = (exception or {}).get("context", {}).get("observed")
    return observed if isinstance(observed, dict) else {}


async def _record_intent(conn: asyncpg.Connection, req: ActInput, key: str, intent: Intent) -> None:
    """`action_intent`, the write-ahead record: committed before the connector is called."""
    snapshot = {
        "idempotency_key": key,
        "attempt": activity.info().attempt,
        "proposal": req.proposal.model_dump(mode="json"),
        "authorisation": intent.authorisation.model_dump(mode="json"),
        "at_execution": intent.check.record(),
    }
    await record(conn, req.run, "action_intent", snapshot, actor=f"agent:{req.run.agent}")
