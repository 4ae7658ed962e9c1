"""Act: execute an authorised proposal exactly once through the connector's write interface.

Defence in depth: this activity does not trust its caller. It refuses unless the database
holds an auto-execute verdict for exactly this proposal, or approvals of exactly this
proposal by members who are still authorised, each proven by a signed statement. The intent is committed to the audit trail
before the connector is called, and the result after, in the same transaction as the write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._deps import Deps
from charter.connectors import ActionRefusedByBooks, UnsupportedAction
from charter.connectors.demo import DemoBooksWriter
from charter.connectors.demo_auth import WRITE_CONNECTOR, ConnectorAuthError, obtain
from charter.governance import approvals, proofs
from charter.notify.notifier import ExceptionNotice, deliver
from charter.storage import audit, members, runs
from schemas import ActInput, ActionResult
from schemas.errors import ErrorType


class NotAuthorised(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type=ErrorType.NOT_AUTHORISED, non_retryable=True)


class ActActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._notifier = deps.notifier
        # Write-scoped credentials are obtained here only, and only after authorisation.
        self._credentials = deps.credentials.scoped("write")

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
        elif verdict.outcome == "execute":
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
            roles = await members.roles(conn, run.tenant_id, approver) or []
            if not approvals.holds_roles(roles, requirements):
                raise NotAuthorised(f"act refused: {approver!r} lacks a role this action needs")
        # The exception itself must be closed as approved: an approval row beside a reject,
        # or on an expired exception, is no authorisation.
        exception = await runs.get_exception(
            conn, run.tenant_id, runs.exception_id_for(run.workflow_id, proposal.proposal_id)
        )
        if exception is None or exception["status"] != "approved":
            status = exception["status"] if exception else "missing"
            raise NotAuthorised(f"act refused: the exception is {status}, not approved")
        return {
            "kind": "approval",
            "approvers": approvers,
            "approvals_required": required,
            "verdict": verdict.model_dump(mode="json"),
            "edited_verdict": edited_verdict.model_dump(mode="json") if edited_verdict else None,
        }

    @activity.defn(name="act")
    async def act(self, req: ActInput) -> ActionResult:
        key = runs.idempotency_key_for(req.run.workflow_id, req.proposal)
        try:
            return await self._act(req, key)
        except ApplicationError as exc:
            if exc.non_retryable and exc.type != ErrorType.ACTION_REFUSED_BY_BOOKS:
                # A final refusal is a step of the run too: audit it (the books' own refusal
                # is already recorded beside its intent).
                await self._record_refusal(req, key, exc)
            raise

    async def _record_refusal(self, req: ActInput, key: str, exc: ApplicationError) -> None:
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            await audit.append(
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

    async def _act(self, req: ActInput, key: str) -> ActionResult:
        run, proposal = req.run, req.proposal
        # 1. Check authorisation and commit the intent (write-ahead) in its own transaction.
        async with self._db.tenant(run.tenant_id) as conn:
            existing = await conn.fetchrow(
                "SELECT connector_reference, executed_at FROM charter.actions WHERE tenant_id = $1 "
                "AND idempotency_key = $2",
                run.tenant_id,
                key,
            )
            if existing is not None:
                return ActionResult(
                    proposal_id=proposal.proposal_id,
                    idempotency_key=key,
                    status="already_executed",
                    connector_reference=existing["connector_reference"],
                    executed_at=existing["executed_at"],
                )
            authorisation = await self._authorisation(conn, req)
            await audit.append(
                conn,
                run.tenant_id,
                "action_intent",
                {
                    "idempotency_key": key,
                    "attempt": activity.info().attempt,
                    "proposal": proposal.model_dump(mode="json"),
                    "authorisation": authorisation,
                },
                actor=f"agent:{run.agent}",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        # 2. The write credential, only now that authorisation is established; in its own
        #    transaction so that a refreshed OAuth token is kept whatever happens next.
        connector = WRITE_CONNECTOR.get(proposal.action)
        if connector is None:
            raise ApplicationError(
                f"demo-books cannot perform {proposal.action!r}",
                type=ErrorType.UNSUPPORTED_ACTION,
                non_retryable=True,
            )
        try:
            async with self._db.tenant(run.tenant_id) as conn:
                credential = await obtain(self._credentials, conn, run.tenant_id, connector)
        except ConnectorAuthError as exc:
            raise ApplicationError(
                str(exc), type=ErrorType.CREDENTIAL_UNAVAILABLE, non_retryable=True
            ) from None
        # 3. Execute, record the action row (the idempotency guard) and the result together.
        refused: ActionRefusedByBooks | None = None
        async with self._db.tenant(run.tenant_id) as conn:
            writer = DemoBooksWriter(conn, run.tenant_id, credential)
            try:
                reference = await writer.execute(proposal, key)
            except UnsupportedAction as exc:
                raise ApplicationError(
                    str(exc), type=ErrorType.UNSUPPORTED_ACTION, non_retryable=True
                ) from None
            except ActionRefusedByBooks as exc:
                # The books refused before writing anything: commit the refusal to the audit
                # trail beside the intent, then fail without retrying.
                refused = exc
                await audit.append(
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
                inserted = await conn.fetchval(
                    "INSERT INTO charter.actions (tenant_id, idempotency_key, workflow_id, "
                    "proposal_id, action, proposal, authorisation, connector_reference, "
                    "executed_at) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    run.tenant_id,
                    key,
                    run.workflow_id,
                    proposal.proposal_id,
                    proposal.action,
                    proposal.model_dump_json(),
                    json.dumps(authorisation),
                    reference,
                    executed_at,
                )
                if inserted is None:
                    # A concurrent attempt won; roll this one back by raising, then report theirs.
                    raise ApplicationError(
                        "concurrent execution detected; retrying", type=ErrorType.CONCURRENT
                    )
                await audit.append(
                    conn,
                    run.tenant_id,
                    "action_result",
                    {
                        "idempotency_key": key,
                        "connector_reference": reference,
                        "status": "executed",
                    },
                    actor=f"connector:{writer.name}",
                    workflow_id=run.workflow_id,
                    run_id=run.run_id,
                )
        if refused is not None:
            raise ApplicationError(
                str(refused), type=ErrorType.ACTION_REFUSED_BY_BOOKS, non_retryable=True
            )
        if authorisation["kind"] == "approval":
            # Committed: the exception's card can say that the approved action executed.
            await deliver(
                self._notifier,
                ExceptionNotice(
                    kind="executed",
                    tenant_id=run.tenant_id,
                    exception_id=runs.exception_id_for(run.workflow_id, proposal.proposal_id),
                    workflow_id=run.workflow_id,
                    run_id=run.run_id,
                    at=activity.info().current_attempt_scheduled_time,
                ),
            )
        return ActionResult(
            proposal_id=proposal.proposal_id,
            idempotency_key=key,
            status="executed",
            connector_reference=reference,
            executed_at=executed_at,
        )
