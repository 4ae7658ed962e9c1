"""Act: execute an authorised proposal exactly once through the connector's write interface.

Defence in depth: this activity does not trust its caller. It refuses unless the database
holds an auto-execute verdict for exactly this proposal, or approvals of exactly this
proposal by members who are still authorised, each proven by a signed statement. The intent is committed to the audit trail
before the connector is called, and the result after, in the same transaction as the write.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._connector_errors import activity_error
from activities._deps import Deps
from activities.exceptions import open_exception
from charter.connectors import (
    ActionRefusedByBooks,
    BooksWriter,
    ConnectorAuthError,
    ConnectorError,
    OutcomeUnknown,
    UnsupportedAction,
    registry,
)
from charter.governance import approvals
from charter.notify.notifier import ExceptionNotice, NoticeKind, deliver
from charter.runtime.faults import crash_point
from charter.services import proofs
from charter.services.execution import ExecutionCheck, check_and_reserve
from charter.storage import actions, audit_trail, ledger, roster, runs
from schemas import ActInput, ActionResult, Observation, Proposal, Verdict
from schemas.errors import ErrorType

#: An exception opened by the act of a caller that sent no deadline waits this long.
_DEFAULT_DECISION_WINDOW = timedelta(days=3)


class NotAuthorised(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type=ErrorType.NOT_AUTHORISED, non_retryable=True)


class BackToHumans(ApplicationError):
    """The act did not execute: what it was judged on no longer holds, or a limit is
    reached, and an exception now waits for a human (its id is the first detail)."""

    def __init__(self, message: str, exception_id: str) -> None:
        super().__init__(message, exception_id, type=ErrorType.BACK_TO_HUMANS, non_retryable=True)


class RefusedAtExecution(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type=ErrorType.REFUSED_AT_EXECUTION, non_retryable=True)


class ActActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier
        self._max_observation_age = deps.max_observation_age
        # Write-scoped credentials are obtained here only, and only after authorisation.
        self._credentials = deps.credentials.scoped("write")
        # Read-scoped ones too, to re-read the facts at the providers before acting.
        self._readers = deps.credentials.scoped("read")

    async def _authorisation(self, conn: asyncpg.Connection, req: ActInput) -> dict[str, object]:
        run, proposal = req.run, req.proposal
        stored = await runs.get_proposal(conn, run.tenant_id, run.workflow_id, proposal.proposal_id)
        if stored is None:
            raise NotAuthorised(
                f"act refused: no gate verdict recorded for {run.workflow_id}/{proposal.proposal_id}"
            )
        recorded, verdict = stored
        digest = runs.proposal_digest(proposal)
        edited_verdict = None
        if runs.proposal_digest(recorded) != digest:
            # Approve-with-edit: the parameters must be an edit the database holds, judged
            # by the gate and not denied; otherwise the caller changed what was judged.
            edit = await runs.get_edit(
                conn, run.tenant_id, run.workflow_id, proposal.proposal_id, digest
            )
            if edit is None:
                raise NotAuthorised(
                    "act refused: the proposal differs from the one the gate judged"
                )
            edited_verdict = edit[1]
            if edited_verdict.outcome == "deny":
                raise NotAuthorised("act refused: the gate denied the edited proposal")
        elif verdict.outcome == "execute" and not await self._sent_back(conn, req):
            return {"kind": "gate", "verdict": verdict.model_dump(mode="json")}
        if verdict.outcome == "deny":
            raise NotAuthorised("act refused: the gate denied this proposal")
        approvers = await runs.approvals(
            conn, run.tenant_id, run.workflow_id, proposal.proposal_id, digest
        )
        # Only approvals whose stored statements verify count: a decision row written with
        # the application role's credentials alone proves nothing.
        proven = await proofs.proven_approvers(
            conn,
            proofs.Binding(
                tenant_id=run.tenant_id,
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                proposal_id=proposal.proposal_id,
                digest=digest,
            ),
        )
        approvers = [a for a in approvers if a in proven]
        rejected_by = await runs.rejections(
            conn, run.tenant_id, run.workflow_id, proposal.proposal_id
        )
        if rejected_by:
            raise NotAuthorised(f"act refused: rejected by {', '.join(rejected_by)}")
        requester = await runs.requested_by(conn, run.tenant_id, run.workflow_id)
        if any(approvals.same_member(a, requester) for a in approvers):
            raise NotAuthorised("act refused: an approval is by the member who requested the run")
        if not approvers:
            raise NotAuthorised(
                "act refused: no recorded approval of this proposal by a currently authorised member"
            )
        required = approvals.required(verdict, edited_verdict)
        if len(approvers) < required:
            raise NotAuthorised(
                f"act refused: {len(approvers)} of {required} required approvals recorded"
            )
        requirements = approvals.role_requirements(verdict, edited_verdict)
        for approver in approvers:
            roles = await roster.roles(conn, run.tenant_id, approver) or []
            if not approvals.holds_roles(roles, requirements):
                raise NotAuthorised(f"act refused: {approver!r} lacks a role this action needs")
        # The exception itself must be closed as approved: an approval row beside a reject,
        # or on an expired exception, is no authorisation.
        exception = await runs.latest_exception(
            conn, run.tenant_id, run.workflow_id, proposal.proposal_id
        )
        if exception is None or exception["status"] != "approved":
            status = exception["status"] if exception else "missing"
            raise NotAuthorised(f"act refused: the exception is {status}, not approved")
        return {
            "kind": "approval",
            "exception_id": exception["exception_id"],
            "approvers": approvers,
            "approvals_required": required,
            "verdict": verdict.model_dump(mode="json"),
            "edited_verdict": edited_verdict.model_dump(mode="json") if edited_verdict else None,
        }

    @staticmethod
    async def _sent_back(conn: asyncpg.Connection, req: ActInput) -> bool:
        """An auto-execute verdict that an earlier attempt sent back to the humans (the facts,
        the law or a limit) authorises nothing by itself any more: it needs the approval."""
        run = req.run
        exception_id = runs.exception_id_for(run.workflow_id, req.proposal.proposal_id)
        return await runs.get_exception(conn, run.tenant_id, exception_id) is not None

    async def _shown(self, conn: asyncpg.Connection, req: ActInput) -> dict[str, Any] | None:
        run = req.run
        exception = await runs.latest_exception(
            conn, run.tenant_id, run.workflow_id, req.proposal.proposal_id
        )
        observed = (exception or {}).get("context", {}).get("observed")
        return observed if isinstance(observed, dict) else {}

    async def _send_back(
        self, conn: asyncpg.Connection, req: ActInput, check: ExecutionCheck, verdict: Any
    ) -> str:
        """Open the exception a human decides instead, in the act's transaction.

        A proposal already put to the humans (what they approved no longer holds) gets a
        new exception showing what changed, and the decisions on the old one stop counting."""
        run, proposal = req.run, req.proposal
        earlier = await runs.count_exceptions(
            conn, run.tenant_id, run.workflow_id, proposal.proposal_id
        )
        extra: dict[str, Any] = {}
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
            expires_at=req.decision_deadline or datetime.now(UTC) + _DEFAULT_DECISION_WINDOW,
            actor="act",
            exception_id=exception_id,
            at_execution=check.record(),
            **extra,
        )

    async def _notify(self, kind: NoticeKind, req: ActInput, exception_id: str) -> None:
        run = req.run
        await deliver(
            self._notifier,
            ExceptionNotice(
                kind=kind,
                tenant_id=run.tenant_id,
                exception_id=exception_id,
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                at=activity.info().current_attempt_scheduled_time,
            ),
        )

    @activity.defn(name="act")
    async def act(self, req: ActInput) -> ActionResult:
        key = runs.idempotency_key_for(req.run.workflow_id, req.proposal)
        try:
            return await self._act(req, key)
        except ApplicationError as exc:
            if exc.non_retryable and exc.type not in (
                ErrorType.ACTION_REFUSED_BY_BOOKS,
                ErrorType.BACK_TO_HUMANS,
            ):
                # A final refusal is a step of the run too: audit it (the books' own refusal
                # is already recorded beside its intent).
                await self._record_refusal(req, key, exc)
            raise

    async def _record_refusal(self, req: ActInput, key: str, exc: ApplicationError) -> None:
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            await self._release(conn, req, key)
            await audit_trail.append(
                conn,
                run.tenant_id,
                "action_refused",
                {
                    "idempotency_key": key,
                    "status": "refused",
                    "error": exc.type,
                    "reason": exc.message,
                    "proposal": req.proposal.model_dump(mode="json"),
                },
                actor="act",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )

    async def _release(self, conn: asyncpg.Connection, req: ActInput, key: str) -> None:
        """Free the action's reservation, once: the action will not execute."""
        run = req.run
        if await ledger.release(conn, run.tenant_id, key, datetime.now(UTC)):
            await audit_trail.append(
                conn,
                run.tenant_id,
                "reservation_released",
                {"idempotency_key": key, "proposal_id": req.proposal.proposal_id},
                actor="act",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )

    async def _act(self, req: ActInput, key: str, *, look_first: bool = True) -> ActionResult:
        run, proposal = req.run, req.proposal
        read = await self._provider_facts(req)
        # 1. Check authorisation and commit the intent (write-ahead) in its own transaction.
        async with self._db.tenant(run.tenant_id) as conn:
            existing = await actions.executed(conn, run.tenant_id, key)
            if existing is not None:
                return _already_executed(proposal, key, existing)
            # An earlier attempt committed its intent and was cut short: the provider may hold
            # its write although nothing here says so. Money that moved is recorded as moved,
            # before anything is judged again: fresh facts would now show the bill paid, or a
            # spend cap reached by this very payment, and send back what already happened.
            earlier = (
                await actions.intended_authorisation(conn, run.tenant_id, run.workflow_id, key)
                if look_first
                else None
            )
            if earlier is None:
                authorisation = await self._authorisation(conn, req)
                autonomous = authorisation["kind"] != "approval"
                # The facts and the law of this moment, and the limits, in this transaction.
                check = await check_and_reserve(
                    conn,
                    run=run,
                    proposal=proposal,
                    key=key,
                    verdict=judged_verdict(authorisation),
                    shown=None if autonomous else await self._shown(conn, req),
                    now=datetime.now(UTC),
                    read=read,
                    observed_at=await runs.observed_at(
                        conn, run.tenant_id, run.workflow_id, run.run_id
                    )
                    if autonomous
                    else None,
                    max_age=self._max_observation_age,
                )
                if check.outcome == "refuse":
                    raise RefusedAtExecution(f"act refused at execution: {check.reason}")
                sent_back = None
                if check.outcome == "decide":
                    sent_back = await self._send_back(conn, req, check, authorisation["verdict"])
                else:
                    await audit_trail.append(
                        conn,
                        run.tenant_id,
                        "action_intent",
                        {
                            "idempotency_key": key,
                            "attempt": activity.info().attempt,
                            "proposal": proposal.model_dump(mode="json"),
                            "authorisation": authorisation,
                            "at_execution": check.record(),
                        },
                        actor=f"agent:{run.agent}",
                        workflow_id=run.workflow_id,
                        run_id=run.run_id,
                    )
        if earlier is not None:
            found = await self._found_at_provider(req, key, earlier)
            if found is not None:
                return found
            return await self._act(req, key, look_first=False)
        if sent_back is not None:
            await self._notify("opened", req, sent_back)
            raise BackToHumans(f"sent back to a human: {check.reason}", sent_back)
        crash_point("intent-committed")
        # 2. Who performs the action, and its write credential, only now that authorisation
        #    is established; in its own transaction so that a refreshed OAuth token is kept
        #    whatever happens next.
        try:
            async with self._db.tenant(run.tenant_id) as conn:
                route = await registry.write_route(conn, run.tenant_id, proposal.action)
                credential = await registry.obtain(
                    self._credentials, conn, run.tenant_id, route.credential_connector
                )
        except (UnsupportedAction, ConnectorAuthError) as exc:
            raise activity_error(exc) from None
        # 3. Execute, record the action row (the idempotency guard) and the result together.
        refused: ActionRefusedByBooks | None = None
        async with self._db.tenant(run.tenant_id) as conn:
            await actions.take_turn(conn, run.tenant_id, proposal, key)
            writer = registry.writer(route, conn, run.tenant_id, credential, judged=check.fresh)
            try:
                reference = await self._perform(writer, proposal, key)
                crash_point("connector-wrote")
            except ActionRefusedByBooks as exc:
                # The books refused before writing anything: commit the refusal to the audit
                # trail beside the intent (which it closes), then fail without retrying.
                refused = exc
                await self._release(conn, req, key)
                await audit_trail.append(
                    conn,
                    run.tenant_id,
                    "action_refused",
                    {"idempotency_key": key, "status": "refused", "reason": str(exc)},
                    actor=f"connector:{writer.name}",
                    workflow_id=run.workflow_id,
                    run_id=run.run_id,
                )
            if refused is None:
                executed_at = datetime.now(UTC)
                try:
                    # The ledger first: its refusal must roll back before anything is recorded.
                    await ledger.mark_executed(conn, run.tenant_id, key)
                except ledger.ReservationLapsed as exc:
                    # Rolls the write back; the retried attempt reserves (and re-judges) anew.
                    raise ApplicationError(str(exc), type=ErrorType.RESERVATION_LAPSED) from None
                await _record_result(
                    conn,
                    req,
                    key,
                    authorisation,
                    reference,
                    executed_at,
                    f"connector:{writer.name}",
                )
        if refused is not None:
            raise ApplicationError(
                str(refused), type=ErrorType.ACTION_REFUSED_BY_BOOKS, non_retryable=True
            )
        return await self._executed(req, key, authorisation, reference, executed_at)

    async def _executed(
        self,
        req: ActInput,
        key: str,
        authorisation: dict[str, Any],
        reference: str,
        executed_at: datetime,
    ) -> ActionResult:
        if authorisation.get("kind") == "approval":
            # Committed: the exception's card can say that the approved action executed.
            await self._notify("executed", req, str(authorisation["exception_id"]))
        return ActionResult(
            proposal_id=req.proposal.proposal_id,
            idempotency_key=key,
            status="executed",
            connector_reference=reference,
            executed_at=executed_at,
        )

    async def _found_at_provider(
        self, req: ActInput, key: str, authorisation: dict[str, Any]
    ) -> ActionResult | None:
        """Record an earlier attempt's write that the provider holds under `key`, on the
        authorisation its intent committed; None when the provider holds none (or cannot
        be asked with a read credential: then the normal path asks before it creates)."""
        run, proposal = req.run, req.proposal
        try:
            async with self._db.tenant(run.tenant_id) as conn:
                route = await registry.write_route(conn, run.tenant_id, proposal.action)
                credential = await registry.obtain(
                    self._readers, conn, run.tenant_id, route.credential_connector
                )
        except (UnsupportedAction, ConnectorAuthError):
            return None
        finder = registry.lookup(route, credential)
        if finder is None:
            return None
        async with self._db.tenant(run.tenant_id) as conn:
            await actions.take_turn(conn, run.tenant_id, proposal, key)
            existing = await actions.executed(conn, run.tenant_id, key)
            if existing is not None:
                return _already_executed(proposal, key, existing)
            try:
                reference = await finder.find(key)
            except ConnectorError as exc:
                # Not knowing is no licence to judge again and perhaps pay twice: ask again.
                raise ApplicationError(str(exc), type=ErrorType.PROVIDER_UNAVAILABLE) from None
            if reference is None:
                return None
            executed_at = datetime.now(UTC)
            await ledger.record_moved(conn, run.tenant_id, key)
            await _record_result(
                conn,
                req,
                key,
                authorisation,
                reference,
                executed_at,
                f"connector:{finder.name}",
                extra={"found_after_attempt": activity.info().attempt - 1},
            )
        return await self._executed(req, key, authorisation, reference, executed_at)

    async def _provider_facts(self, req: ActInput) -> Observation | None:
        """The proposal's records as the tenant's providers show them now, or None when the
        demo books hold them (those are re-read under row locks inside the act's
        transaction). Read-scoped credentials, as the read activity uses."""
        run = req.run
        try:
            async with self._db.tenant(run.tenant_id) as conn:
                route = await registry.read_route(conn, run.tenant_id, run.agent)
                if not route.composed:
                    return None
                credentials = await registry.read_credentials(
                    self._readers, conn, run.tenant_id, route
                )
            async with self._db.tenant(run.tenant_id) as conn:
                reader = registry.reader(route, conn, run.tenant_id, credentials)
                # Everything, not only the proposal's bill: the vendor's other bills are facts
                # too (a look-alike duplicate).
                return await reader.snapshot(run.agent, [])
        except ConnectorError as exc:
            raise activity_error(exc) from None

    @staticmethod
    async def _perform(writer: BooksWriter, proposal: Proposal, key: str) -> str:
        """The provider's reference for the action under `key`, made at most once.

        The provider is asked first whether it already holds a write under this key: an
        earlier attempt may have been applied and its answer lost. When a request's outcome
        is unknown, the provider is asked again; if the write is still not there, the attempt
        fails retryably and the next one asks before it creates anything.
        """
        try:
            found = await writer.find(key)
            if found is not None:
                return found
            try:
                return await writer.execute(proposal, key)
            except OutcomeUnknown as exc:
                found = await writer.find(key)
                if found is not None:
                    return found
                raise ApplicationError(
                    f"{exc}; not found at the provider, the next attempt looks again first",
                    type=ErrorType.OUTCOME_UNKNOWN,
                ) from None
        except ActionRefusedByBooks:
            raise
        except ConnectorError as exc:
            raise activity_error(exc) from None


async def _record_result(
    conn: asyncpg.Connection,
    req: ActInput,
    key: str,
    authorisation: dict[str, Any],
    reference: str,
    executed_at: datetime,
    actor: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """The action row and `action_result`, in the write's transaction."""
    run = req.run
    recorded = await actions.record_result(
        conn,
        tenant_id=run.tenant_id,
        idempotency_key=key,
        workflow_id=run.workflow_id,
        run_id=run.run_id,
        proposal=req.proposal,
        authorisation=authorisation,
        reference=reference,
        executed_at=executed_at,
        actor=actor,
        extra=extra,
    )
    if not recorded:
        # A concurrent attempt won; roll this one back by raising, then report theirs.
        raise ApplicationError("concurrent execution detected; retrying", type=ErrorType.CONCURRENT)


def _already_executed(proposal: Proposal, key: str, existing: Any) -> ActionResult:
    return ActionResult(
        proposal_id=proposal.proposal_id,
        idempotency_key=key,
        status="already_executed",
        connector_reference=existing["connector_reference"],
        executed_at=existing["executed_at"],
    )


def judged_verdict(authorisation: dict[str, Any]) -> Verdict:
    """The verdict an authorisation rests on: the edited parameters' after an edit."""
    raw = authorisation.get("edited_verdict") or authorisation["verdict"]
    return Verdict.model_validate(raw)
