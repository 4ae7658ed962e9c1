"""Act: execute an authorised proposal exactly once through the connector's write interface.

Defence in depth: this activity does not trust its caller. It refuses unless the database
holds an auto-execute verdict for exactly this proposal, or approvals of exactly this
proposal by members who are still authorised, each proven by a signed statement
(`charter.services.authorisation`). In named steps, each in its own short transaction,
and never a provider call inside one:

1. settle what an earlier attempt left: its result, or the write its intent made at the
   provider (money that moved is recorded as moved before anything is judged again); an
   earlier attempt still writing (its lease live) is waited for, within a bound;
2. authorise, judge and reserve at the moment of execution (the spend lock held only
   there), and commit the write intent with a lease on the record it writes (or send the
   proposal back to a human, or refuse it); a provider whose circuit is open sends it back;
3. obtain the write credential, only now that the action is authorised;
4. perform: a provider is called with no transaction and no connection held, through its
   bulkhead, the lease renewed meanwhile; the result is recorded in a new transaction that
   checks the lease. The demo books, which live in Charter's database, write in that
   transaction itself;
5. close the books: a bill paid (now or by an earlier attempt) gets its QuickBooks
   BillPayment, once (`charter.services.books_closing`), in the same manner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._action_records import (
    Execution,
    action_result,
    already_executed,
    close_found_executed,
    record_executed,
    record_provider_write,
    record_refusal,
    record_result,
    release,
)
from activities._audit import record
from activities._connector_errors import activity_error
from activities._deps import Deps
from activities._escalations import escalate
from activities._leases import (
    LEASE_TTL,
    WriteLease,
    ended,
    give_up,
    new_holder,
    while_leased,
)
from activities._notices import notify
from activities._provider_writes import RETRY_BUDGET, Escalation, find_earlier, perform
from activities._send_back import close_if_unstable, send_back
from charter.connectors import (
    ActionRefusedByBooks,
    ConnectorAuthError,
    ConnectorError,
    ProviderUnavailable,
    UnsupportedAction,
    registry,
)
from charter.connectors.calls import through
from charter.connectors.registry import WriteRoute
from charter.crypto.anchors import TrustAnchors
from charter.notify.notifier import Alert, deliver_alert
from charter.runtime.bulkheads import CallTimedOut, CircuitOpen, Unavailable
from charter.runtime.faults import crash_point
from charter.services.authorisation import AuthorisationRefused, authorise
from charter.services.books_closing import Payment, close_books, record_missing
from charter.services.execution import ExecutionCheck, check_and_reserve
from charter.services.payment_keys import action_key
from charter.services.tolerance import approved_tolerance
from charter.storage import actions, leases, ledger, provider_writes, runs
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

T = TypeVar("T")


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
    """A committed write intent: what authorised the action, what it was judged on, and
    the lease on the record it writes."""

    authorisation: Authorisation
    check: ExecutionCheck
    #: Only a write that goes out to a provider holds one: the demo books' write commits
    #: with its result, so no attempt can leave one behind half done.
    lease: WriteLease | None


class ActActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._anchors = deps.trust_anchors
        self._notifier = deps.notifier
        self._max_observation_age = deps.max_observation_age
        self._bulkheads = deps.bulkheads
        self._max_send_backs = deps.max_send_backs
        # Write-scoped credentials are obtained here only, and only after authorisation.
        self._credentials = deps.credentials.scoped("write")
        # Read-scoped ones too, to re-read the facts at the providers before acting.
        self._readers = deps.credentials.scoped("read")

    @activity.defn(name="act")
    async def act(self, req: ActInput) -> ActionResult:
        key = await action_key(self._db, req.run, req.proposal)
        holder = new_holder()
        try:
            result = await self._act(req, key, holder)
        except ApplicationError as exc:
            if exc.non_retryable and exc.type not in _RECORDED_WHERE_MADE:
                # A final refusal is a step of the run too: audit it.
                await self._record_refusal(req, key, exc, holder)
            raise
        await self._close_books(req, result)
        return result

    async def _close_books(self, req: ActInput, result: ActionResult) -> None:
        """The payment made (now or by an earlier attempt), record it in the books: a
        QuickBooks BillPayment, once. Intuit turning it away for now retries the act (which
        finds the payment made and comes straight back here), within the retry budget;
        past it, or for any other reason, the BillPayment is recorded as missing and the
        payment stands: `charter actions reconcile` records it later."""
        run = req.run
        payment = Payment(
            run.tenant_id,
            req.proposal,
            result.idempotency_key,
            result.connector_reference,
            run.workflow_id,
            run.run_id,
        )
        actor = f"agent:{run.agent}"
        try:
            closing = await close_books(
                self._db, self._credentials, payment, actor=actor, bulkheads=self._bulkheads
            )
        except (ProviderUnavailable, Unavailable) as exc:
            attempt = activity.info().attempt
            if attempt < RETRY_BUDGET:
                raise CatalogueError(
                    ErrorType.PROVIDER_UNAVAILABLE,
                    f"the payment is made; recording it in the books: {exc}",
                ) from None
            reason = f"{exc}; after {attempt} attempts"
            closing = await record_missing(self._db, payment, actor, reason)
        if closing.outcome == "missing":
            # The money moved and the books do not say so yet: someone must know.
            bill = req.proposal.reference or "?"
            await deliver_alert(
                self._notifier,
                Alert(
                    tenant_id=run.tenant_id,
                    text=f"bill {bill} is paid ({result.connector_reference}) but QuickBooks "
                    f"has no BillPayment for it: {closing.detail}. `charter actions reconcile` "
                    "records it",
                ),
            )

    async def _act(self, req: ActInput, key: str, holder: str) -> ActionResult:
        settled = await self._settle_earlier_attempt(req, key, holder)
        if settled is not None:
            return settled
        intent = await self._commit_intent(req, key, holder)
        crash_point("intent-committed")
        try:
            route, credential = await self._route_and_credential(self._credentials, req)
        except (UnsupportedAction, ConnectorAuthError) as exc:
            raise activity_error(exc) from None
        return await self._perform_and_record(req, key, intent, route, credential)

    async def _settle_earlier_attempt(
        self, req: ActInput, key: str, holder: str
    ) -> ActionResult | None:
        """What an earlier attempt left under `key`: its recorded result, or the write its
        committed intent made at the provider; None when there is nothing to settle.

        An attempt cut short after its intent may have reached the provider although nothing
        here says so. Money that moved is recorded as moved before anything is judged again:
        fresh facts would now show the bill paid, or a spend cap reached by this very
        payment, and send back what already happened. An attempt still writing the same
        record (its lease live) is waited for first, within a bound."""
        run = req.run
        recorded = await self._recorded(req, key)
        if recorded is not None:
            return recorded
        if not await ended(self._db, run.tenant_id, _subject(req, key), holder):
            raise CatalogueError(
                ErrorType.CONCURRENT, "another attempt is still writing this record; retrying"
            )
        async with self._db.tenant(run.tenant_id) as conn:
            existing = await actions.executed(conn, run.tenant_id, key)
            if existing is not None:
                await close_found_executed(conn, run, key, existing)
                return already_executed(req.proposal, key, existing)
            earlier = await actions.intended_authorisation(
                conn, run.tenant_id, run.workflow_id, key
            )
        if earlier is None:
            return None
        return await self._found_at_provider(req, key, earlier)

    async def _recorded(self, req: ActInput, key: str) -> ActionResult | None:
        """The result recorded under `key` already (by an earlier attempt, or by
        `actions reconcile`), if there is one: nothing to wait for then."""
        async with self._db.tenant(req.run.tenant_id) as conn:
            existing = await actions.executed(conn, req.run.tenant_id, key)
            if existing is not None:
                await close_found_executed(conn, req.run, key, existing)
        return None if existing is None else already_executed(req.proposal, key, existing)

    async def _found_at_provider(
        self, req: ActInput, key: str, authorisation: Authorisation
    ) -> ActionResult | None:
        """Record an earlier attempt's write that the provider holds under `key`, on the
        authorisation its intent committed; None when the provider holds none (or cannot
        be asked with a read credential: then the perform step asks before it creates).
        The provider is asked with no transaction open."""
        run, proposal = req.run, req.proposal
        try:
            route, credential = await self._route_and_credential(self._readers, req)
        except (UnsupportedAction, ConnectorAuthError):
            return None
        finder = registry.lookup(route, credential)
        if finder is None:
            return None
        async with self._db.tenant(run.tenant_id) as conn:
            attempts = await provider_writes.open_attempts(
                conn, run.tenant_id, key, workflow_id=run.workflow_id, attempt=0
            )
        reference = await self._call(finder.name, lambda: find_earlier(finder, key, attempts))
        if reference is None:
            return None
        async with self._db.tenant(run.tenant_id) as conn:
            await actions.take_turn(conn, run.tenant_id, proposal, key)
            existing = await actions.executed(conn, run.tenant_id, key)
            if existing is not None:
                await close_found_executed(conn, run, key, existing)
                return already_executed(proposal, key, existing)
            execution = Execution(
                authorisation, reference, datetime.now(UTC), f"connector:{finder.name}"
            )
            await ledger.record_moved(conn, run.tenant_id, key)
            found_after = {"found_after_attempt": activity.info().attempt - 1}
            await record_result(conn, req, key, execution, extra=found_after)
            await leases.settle(conn, run.tenant_id, _subject(req, key), key)
        return await self._executed(req, key, execution)

    async def _commit_intent(self, req: ActInput, key: str, holder: str) -> Intent:
        """Authorise, judge and reserve, and commit the write-ahead intent with its lease,
        in one transaction. An action judged now to need a human is sent back instead (the
        exception committed, then `BackToHumans` raised), as is one whose provider's
        circuit stays open; one that may not execute is refused (`RefusedAtExecution`,
        nothing committed)."""
        run = req.run
        try:
            provider = await self._provider_closed(req)
            read_before = await self._facts_from_providers(req)
        except CircuitOpen as exc:
            raise await self._escalate(req, key, str(exc)) from None
        async with self._db.tenant(run.tenant_id) as conn:
            authorisation = await _authorise(conn, req, self._anchors)
            check = await self._judge_and_reserve(conn, req, key, authorisation, read_before)
            if check.outcome == "refuse":
                raise RefusedAtExecution(f"act refused at execution: {check.reason}")
            lease = (
                None if provider is None else WriteLease(run.tenant_id, _subject(req, key), holder)
            )
            sent_back = unstable = None
            if check.outcome == "decide":
                unstable = await close_if_unstable(conn, req, check, self._max_send_backs)
                if unstable is None:
                    sent_back = await send_back(conn, req, check, authorisation.verdict)
            else:
                if lease is not None:
                    await _claim(conn, lease, key)
                intent = Intent(authorisation, check, lease)
                await _record_intent(conn, req, key, intent)
        if unstable is not None:
            await notify(self._notifier, "closed", run, unstable.exception_id)
            raise unstable.error()
        if sent_back is not None:
            await notify(self._notifier, "opened", run, sent_back)
            raise BackToHumans(f"sent back to a human: {check.reason}", sent_back)
        return intent

    async def _provider_closed(self, req: ActInput) -> str | None:
        """The provider that would perform the action (None: the demo books), once its
        circuit is closed, waited for within the bulkhead's bound; `CircuitOpen` if it
        stays open."""
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            try:
                route = await registry.write_route(conn, run.tenant_id, req.proposal.action)
            except ConnectorError:
                return None  # refused, with its reason, where the route is needed
        provider = registry.remote_provider(route)
        if provider is not None:
            await self._bulkheads.closed(provider)
        return provider

    async def _escalate(self, req: ActInput, key: str, reason: str) -> BackToHumans:
        """Send the action back to a human because its provider is not answering: nothing
        was sent, and its reservation (if an earlier attempt made one) is freed."""
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            authorisation = await _authorise(conn, req, self._anchors)
            observed = await runs.observation(conn, run.tenant_id, run.workflow_id, run.run_id)
            if observed is None:
                raise CatalogueError(ErrorType.PROVIDER_UNAVAILABLE, reason)
            check = ExecutionCheck("decide", f"provider not answering: {reason}", observed)
            await release(conn, req, key)
            sent_back = await send_back(conn, req, check, authorisation.verdict)
        await notify(self._notifier, "opened", run, sent_back)
        return BackToHumans(f"sent back to a human: {check.reason}", sent_back)

    async def _facts_from_providers(self, req: ActInput) -> Observation | None:
        """The proposal's records as the tenant's providers show them now, read before the
        intent's transaction opens (no provider call while it holds the spend lock); None
        when the demo books hold them."""
        run = req.run
        try:
            return await registry.facts_from_providers(
                self._readers, self._db, self._bulkheads, run.tenant_id, run.agent, req.proposal
            )
        except CircuitOpen:
            raise
        except Unavailable as exc:
            raise CatalogueError(ErrorType.PROVIDER_UNAVAILABLE, str(exc)) from None
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

    async def _call(self, provider: str, call: Callable[[], Awaitable[T]]) -> T:
        """A provider call through its bulkhead; a call not made, or given up, is retried."""
        try:
            return await through(self._bulkheads, provider, call)
        except CallTimedOut as exc:
            raise CatalogueError(
                ErrorType.OUTCOME_UNKNOWN, f"{exc}; the next attempt looks the write up first"
            ) from None
        except Unavailable as exc:
            raise CatalogueError(ErrorType.PROVIDER_UNAVAILABLE, str(exc)) from None

    async def _perform_and_record(
        self,
        req: ActInput,
        key: str,
        intent: Intent,
        route: WriteRoute,
        credential: Credential,
    ) -> ActionResult:
        """Execute, and record the action row (the idempotency guard) and the result. The
        books' refusal, made before they wrote anything, is committed beside the intent it
        closes, then raised: no retry can change it."""
        provider, lease = registry.remote_provider(route), intent.lease
        if provider is None or lease is None:
            return await self._perform_in_books(req, key, intent, credential)
        writer = registry.provider_writer(route, credential)
        attempt = activity.info().attempt
        async with self._db.tenant(req.run.tenant_id) as conn:
            earlier = await provider_writes.open_attempts(
                conn, req.run.tenant_id, key, workflow_id=req.run.workflow_id, attempt=attempt
            )
        try:
            reference = await while_leased(
                self._db,
                lease,
                self._call(
                    provider,
                    lambda: perform(writer, req.proposal, key, earlier, attempt=attempt),
                ),
            )
        except ActionRefusedByBooks as exc:
            await self._record_books_refusal(req, key, lease, str(exc), writer.name)
            raise CatalogueError(ErrorType.ACTION_REFUSED_BY_BOOKS, str(exc)) from None
        except Escalation as exc:
            await self._put_to_human(req, key, intent, exc, earlier, lease, writer.name)
        except Exception:
            # The call is over, whatever it did: the next attempt need not wait for the lease.
            await give_up(self._db, lease)
            raise
        crash_point("connector-wrote")
        execution = Execution(
            intent.authorisation, reference, datetime.now(UTC), f"connector:{writer.name}"
        )
        async with self._db.tenant(req.run.tenant_id) as conn:
            await actions.take_turn(conn, req.run.tenant_id, req.proposal, key)
            await record_provider_write(conn, req, key, execution, lease)
        return await self._executed(req, key, execution)

    async def _perform_in_books(
        self, req: ActInput, key: str, intent: Intent, credential: Credential
    ) -> ActionResult:
        """The demo books write in Charter's database: the write and its result commit in
        one transaction, so no write outlives an unrecorded result."""
        run = req.run
        refused: ActionRefusedByBooks | None = None
        escalated: tuple[Escalation, str] | None = None
        attempt = activity.info().attempt
        async with self._db.tenant(run.tenant_id) as conn:
            await actions.take_turn(conn, run.tenant_id, req.proposal, key)
            earlier = await provider_writes.open_attempts(
                conn, run.tenant_id, key, workflow_id=run.workflow_id, attempt=attempt
            )
            writer = registry.books_writer(
                conn, run.tenant_id, credential, judged=intent.check.fresh
            )
            actor = f"connector:{writer.name}"
            try:
                reference = await perform(writer, req.proposal, key, earlier, attempt=attempt)
                crash_point("connector-wrote")
            except ActionRefusedByBooks as exc:
                refused = exc
                await record_refusal(conn, req, key, {"reason": str(exc)}, actor=actor)
            except Escalation as exc:
                verdict = intent.authorisation.verdict
                opened = await escalate(
                    conn, req, key, intent.check, verdict, exc, earlier, actor=actor
                )
                escalated = (exc, opened)
            else:
                execution = Execution(intent.authorisation, reference, datetime.now(UTC), actor)
                await record_executed(conn, req, key, execution)
        if refused is not None:
            raise CatalogueError(ErrorType.ACTION_REFUSED_BY_BOOKS, str(refused))
        if escalated is not None:
            await notify(self._notifier, "opened", run, escalated[1])
            raise BackToHumans(f"sent back to a human: {escalated[0]}", escalated[1])
        return await self._executed(req, key, execution)

    async def _put_to_human(
        self,
        req: ActInput,
        key: str,
        intent: Intent,
        escalation: Escalation,
        earlier: provider_writes.OpenAttempts,
        lease: WriteLease,
        name: str,
    ) -> NoReturn:
        """Put to a human what the provider's answer leaves to them (a refusal, a provider
        still turning the payment away, an outcome unknown past the key's retention)."""
        verdict = intent.authorisation.verdict
        async with self._db.tenant(req.run.tenant_id) as conn:
            opened = await escalate(
                conn,
                req,
                key,
                intent.check,
                verdict,
                escalation,
                earlier,
                actor=f"connector:{name}",
            )
            await _end_lease(conn, lease, "released")
        await notify(self._notifier, "opened", req.run, opened)
        raise BackToHumans(f"sent back to a human: {escalation}", opened)

    async def _record_books_refusal(
        self, req: ActInput, key: str, lease: WriteLease, reason: str, name: str
    ) -> None:
        async with self._db.tenant(req.run.tenant_id) as conn:
            await record_refusal(conn, req, key, {"reason": reason}, actor=f"connector:{name}")
            await _end_lease(conn, lease, "released")

    async def _executed(self, req: ActInput, key: str, execution: Execution) -> ActionResult:
        authorisation = execution.authorisation
        if isinstance(authorisation, ApprovalAuthorisation):
            # Committed: the exception's card can say that the approved action executed.
            await notify(self._notifier, "executed", req.run, authorisation.exception_id)
        return action_result(req, key, execution)

    async def _record_refusal(
        self, req: ActInput, key: str, exc: ApplicationError, holder: str
    ) -> None:
        refusal = {
            "error": exc.type,
            "reason": exc.message,
            "proposal": req.proposal.model_dump(mode="json"),
        }
        async with self._db.tenant(req.run.tenant_id) as conn:
            await record_refusal(conn, req, key, refusal, actor="act")
            lease = WriteLease(req.run.tenant_id, _subject(req, key), holder)
            await _end_lease(conn, lease, "released")


def _subject(req: ActInput, key: str) -> str:
    proposal = req.proposal
    return leases.subject_of(proposal.action, proposal.reference, key)


async def _claim(conn: asyncpg.Connection, lease: WriteLease, key: str) -> None:
    """Claim the record's lease in the intent's transaction; another attempt's live lease
    (it won the race since this one looked) rolls the intent back, to be tried again."""
    claimed = await leases.claim(conn, lease.tenant_id, lease.subject, key, lease.holder, LEASE_TTL)
    if claimed is None:
        raise CatalogueError(
            ErrorType.CONCURRENT, "another attempt is writing this record; retrying"
        )


async def _end_lease(conn: asyncpg.Connection, lease: WriteLease, state: leases.LeaseState) -> None:
    await leases.end(conn, lease.tenant_id, lease.subject, lease.holder, state)


async def _authorise(
    conn: asyncpg.Connection, req: ActInput, anchors: TrustAnchors | None
) -> Authorisation:
    try:
        return await authorise(conn, req.run, req.proposal, anchors)
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
