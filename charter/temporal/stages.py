"""A span and counters per stage of a run, around the activities that carry each stage.

Charter's stages map onto activities: `observe` is the read, `reason` the model call,
`record_verdicts` the gate's verdicts on a run's proposals (older runs: `record_verdict`, one
per proposal), `record_decision` a human's decision,
`act` one execution. This interceptor wraps each in a span `charter.<stage>` (a child of
the Temporal SDK's `RunActivity` span, so it sits in the run's trace) and counts outcomes
on the Temporal runtime's metric meter (served on the same Prometheus endpoint as the SDK's
own metrics). Workflow code stays deterministic.

Attributes are ids and enumerated outcomes only, from an explicit list: tenant and agent
slugs, workflow and run ids, the proposal id, the action type, the outcome or the error
type. Never an amount, a counterparty, a reason text or a secret: spans leave for a
collector that is not encrypted like Temporal payloads are.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

#: activity type -> stage
STAGES = {
    "observe": "read",
    "reason": "reason",
    "record_verdict": "gate",
    "record_verdicts": "gate",
    "record_decision": "decision",
    "act": "act",
    "record_reasoning_failure": "reason",
}


def _input_attributes(arg: Any) -> dict[str, str]:
    attributes: dict[str, str] = {}
    run = getattr(arg, "run", None)
    if run is not None:
        attributes |= {
            "charter.tenant": run.tenant_id,
            "charter.agent": run.agent,
            "temporal.workflow_id": run.workflow_id,
            "temporal.run_id": run.run_id,
        }
    proposal = getattr(arg, "proposal", None)
    if proposal is not None:
        attributes["charter.proposal_id"] = proposal.proposal_id
        attributes["charter.action_type"] = proposal.action
    gated = getattr(arg, "gated", None)
    if gated:
        # Every verdict of a run in one span: their ids, and their outcome when they agree.
        attributes["charter.proposal_ids"] = ",".join(g.proposal.proposal_id for g in gated)
        outcomes = {g.verdict.outcome for g in gated}
        attributes["charter.outcome"] = outcomes.pop() if len(outcomes) == 1 else "mixed"
        if len(gated) == 1:
            attributes["charter.proposal_id"] = gated[0].proposal.proposal_id
            attributes["charter.action_type"] = gated[0].proposal.action
    verdict = getattr(arg, "verdict", None)
    decision = getattr(arg, "decision", None)
    if decision is not None:
        attributes["charter.outcome"] = decision.outcome
    elif verdict is not None:
        attributes["charter.outcome"] = verdict.outcome
    return attributes


def _result_attributes(stage: str, result: Any) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {}
    if stage == "act":
        attributes["charter.outcome"] = getattr(result, "status", "unknown")
    elif stage == "reason":
        proposals = getattr(result, "proposals", None)
        if proposals is not None:
            attributes["charter.proposals"] = len(proposals)
        if getattr(result, "failure", None) is not None:
            attributes["charter.outcome"] = "reasoning_failed"
    return attributes


class _Counters:
    """Charter's series, created on the runtime's meter of the running activity."""

    def __init__(self) -> None:
        meter = activity.metric_meter()
        self.stages = meter.create_counter(
            "charter_stage_completions", "Charter stages completed, by stage and outcome"
        )
        self.tokens = meter.create_counter(
            "charter_model_tokens", "Model tokens consumed, by kind", "tokens"
        )

    def stage(self, stage: str, outcome: str) -> None:
        self.stages.add(1, {"stage": stage, "outcome": outcome})

    def usage(self, result: Any) -> None:
        usage = getattr(result, "usage", None)
        if usage is None:
            return
        self.tokens.add(usage.input_tokens, {"kind": "input"})
        self.tokens.add(usage.output_tokens, {"kind": "output"})


class _StageActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, tracer: trace.Tracer) -> None:
        super().__init__(next)
        self._tracer = tracer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        stage = STAGES.get(activity.info().activity_type)
        if stage is None:
            return await super().execute_activity(input)
        attributes = _input_attributes(input.args[0]) if input.args else {}
        # A run's verdicts recorded together still count one gate completion each.
        gated = getattr(input.args[0], "gated", None) if input.args else None
        each = [g.verdict.outcome for g in gated] if gated else None
        counters = _Counters()
        # Heartbeats are `charter.temporal.heartbeats`' job (every activity, with progress
        # details); a second beat here would overwrite the details the reason activity keeps.
        return await self._traced(input, stage, attributes, counters, each)

    async def _traced(
        self,
        input: ExecuteActivityInput,
        stage: str,
        attributes: dict[str, str],
        counters: _Counters,
        each: list[str] | None = None,
    ) -> Any:
        with self._tracer.start_as_current_span(
            f"charter.{stage}", attributes=attributes, record_exception=False
        ) as span:
            try:
                result = await super().execute_activity(input)
            except ApplicationError as exc:
                # The error type names the refusal (NotAuthorised, ActionRefusedByBooks...);
                # its message may quote the books, so it stays out of the span.
                span.set_attributes(
                    {
                        "charter.outcome": "refused",
                        "charter.error_type": exc.type or "ApplicationError",
                    }
                )
                span.set_status(Status(StatusCode.ERROR, exc.type or "ApplicationError"))
                counters.stage(stage, "refused")
                raise
            except BaseException as exc:
                span.set_attributes(
                    {"charter.outcome": "error", "charter.error_type": type(exc).__name__}
                )
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                counters.stage(stage, "error")
                raise
            finished = _result_attributes(stage, result)
            span.set_attributes(finished)
            for outcome in each or [
                str(finished.get("charter.outcome", attributes.get("charter.outcome", "ok")))
            ]:
                counters.stage(stage, outcome)
            counters.usage(result)
            return result


class StageInterceptor(Interceptor):
    """Put it after `TracingInterceptor`, so that its spans are children of the SDK's."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer or trace.get_tracer("charter")

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StageActivityInbound(next, self._tracer)
