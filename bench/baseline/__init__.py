"""The baseline of bench/agent_loop.py: a bare workflow doing a run's external work.

`BareLoop` reads the books, asks the reasoner and acts on every proposal (activities in
`bench.baseline.activities`), with no gate, audit or checks, so the ratio to `AgentLoop`
prices governance and nothing else. With `park` it waits for a signal after reasoning
instead: the parked baseline, holding the same observation and proposals a parked Charter
run holds.

It lives in a package of its own: the workflow sandbox imports a workflow's module by name,
which the benchmark script (run as `__main__`) is not, and `make bench` runs bench/ as a
package.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.baseline.models import BareActInput, BareReasonInput, BareRunInput
    from charter.temporal import search_attributes as sa
    from schemas import Observation, Proposal

_TIMEOUT = timedelta(seconds=60)


@workflow.defn(name="BareLoop")
class BareLoop:
    def __init__(self) -> None:
        self._done = False
        self._observation: Observation | None = None
        self._proposals: list[Proposal] = []

    @workflow.signal
    def done(self) -> None:
        self._done = True

    @workflow.run
    async def run(self, req: BareRunInput) -> list[str]:
        self._observation = await workflow.execute_activity(
            "bare_observe", req, result_type=Observation, start_to_close_timeout=_TIMEOUT
        )
        self._proposals = await workflow.execute_activity(
            "bare_reason",
            BareReasonInput(tenant_id=req.tenant_id, observation=self._observation),
            result_type=list[Proposal],
            start_to_close_timeout=_TIMEOUT,
        )
        if req.park:
            # Counted like a parked AgentLoop: the same search attributes.
            workflow.upsert_search_attributes(
                [sa.TENANT.value_set(req.tenant_id), sa.STAGE.value_set("awaiting_decision")]
            )
            await workflow.wait_condition(lambda: self._done)
            return []
        references = []
        for proposal in self._proposals:
            references.append(
                await workflow.execute_activity(
                    "bare_act",
                    BareActInput(
                        tenant_id=req.tenant_id,
                        workflow_id=workflow.info().workflow_id,
                        proposal=proposal,
                    ),
                    result_type=str,
                    start_to_close_timeout=_TIMEOUT,
                )
            )
        return references
