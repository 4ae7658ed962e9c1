"""`AgentLoop`: read -> reason -> gate -> act, or wait (for days if need be) for a human.

The workflow's body is `workflows.loop.AgentLoopBody`, imported through the sandbox's
pass-through: this module, which the sandbox re-imports for every run, holds only the
definition (name, run method) so that a cached run does not carry its own copy of the code.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas import AgentRunInput, AgentRunResult
    from workflows.loop import MAX_REMINDERS, AgentLoopBody

__all__ = ["MAX_REMINDERS", "AgentLoop"]


@workflow.defn(name="AgentLoop")
class AgentLoop(AgentLoopBody):
    @workflow.run
    async def run(self, input: AgentRunInput) -> AgentRunResult:
        return await self._run(input)
