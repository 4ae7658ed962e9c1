"""Reason: the configured reasoner turns the observation into proposals."""

from __future__ import annotations

from temporalio import activity

from activities._deps import Deps
from charter.storage.audit_group import group_for
from schemas import ReasonInput, ReasonOutput


class ReasonActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._reasoner = deps.reasoner

    @activity.defn(name="reason")
    async def reason(self, req: ReasonInput) -> ReasonOutput:
        run = req.run
        proposals = await self._reasoner.propose(req.observation, req.constitution)
        output = ReasonOutput(reasoner=self._reasoner.name, proposals=proposals)
        # Nothing else is written with this entry, so it may share a commit with other
        # runs' entries of the same tenant (group commit).
        await group_for(self._db).append(
            run.tenant_id,
            "proposed",
            output.model_dump(mode="json"),
            actor=f"reasoner:{self._reasoner.name}",
            workflow_id=run.workflow_id,
            run_id=run.run_id,
        )
        return output
