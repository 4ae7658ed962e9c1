"""Start and finish of a run: pin the constitution, snapshot the approvers, anchor the chain."""

from __future__ import annotations

from temporalio import activity

from activities._deps import Deps
from charter.storage import audit_trail, constitution_versions, roster
from charter.storage.group_commit import group_for
from charter.temporal.errors import CatalogueError
from schemas import AuditHead, FinishRunInput, RunContext, StartRunInput
from schemas.errors import ErrorType


class RunActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db

    @activity.defn(name="start_run")
    async def start_run(self, req: StartRunInput) -> RunContext:
        run = req.run
        async with self._db.tenant(run.tenant_id) as conn:
            try:
                constitution = await constitution_versions.get(
                    conn, run.tenant_id, req.constitution_version
                )
            except constitution_versions.ConstitutionNotFound as exc:
                # Retrying cannot create a constitution: fail the run with a clear message.
                raise CatalogueError(ErrorType.CONSTITUTION_NOT_FOUND, str(exc)) from None
            approvers = await roster.approvers(conn, run.tenant_id)
            approver_roles = await roster.approver_roles(conn, run.tenant_id)
            await audit_trail.append(
                conn,
                run.tenant_id,
                "run_started",
                {
                    "agent": run.agent,
                    "trigger": req.trigger,
                    "requested_by": req.requested_by,
                    "constitution_version": constitution.version,
                    "constitution_hash": constitution.content_hash,
                    "approvers": approvers,
                },
                actor=f"agent:{run.agent}",
                workflow_id=run.workflow_id,
                run_id=run.run_id,
            )
        return RunContext(
            constitution=constitution, approvers=approvers, approver_roles=approver_roles
        )

    @activity.defn(name="finish_run")
    async def finish_run(self, req: FinishRunInput) -> AuditHead:
        run = req.run
        # The returned head (this entry's seq and hash) anchors the chain in Temporal history.
        return await group_for(self._db).append(
            run.tenant_id,
            "run_completed",
            {"agent": run.agent, "outcomes": req.summary},
            actor=f"agent:{run.agent}",
            workflow_id=run.workflow_id,
            run_id=run.run_id,
        )
