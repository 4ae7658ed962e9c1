"""A span and counters per stage of a run, around the activities that carry each stage.

Charter's stages map onto activities: `observe` is the read, `reason` the model call,
`record_verdicts` the gate's verdicts on a run's proposals (older runs: `record_verdict`, one
per proposal), `record_decision` a human's decision,
`act` one execution. This interceptor wraps each in a span `charter.<stage>` (a child of
the Temporal SDK's `RunActivity` span, so it sits in the run's trace) and counts outcomes
on the Temporal runtime's metric meter (served on the same Prometheus endpoint as the SDK's
own metrics). Workflow code stays deterministic.

Beside the per-stage counts, the series an operator alerts on: `charter_runs{outcome}` (each
run's worst proposal outcome, counted when `finish_run` completes), `charter_proposals{verdict}`
(the gate's verdicts), `charter_act_refusals{error_type}` (final refusals of `act`),
`charter_time_to_decision{outcome}` (seconds from an exception's opening to the decision that
closed it, recorded by `record_decision`) and `charter_open_exceptions{agent}` (a gauge the
worker refreshes from the database, `charter.runtime.open_exceptions`).

Attributes are ids and enumerated outcomes only, from an explicit list: tenant and agent
slugs, workflow and run ids, the proposal id, the action type, the outcome or the error
type. Never an amount, a counterparty, a reason text or a secret: spans leave for a
collector that is not encrypted like Temporal payloads are.
"""

from __future__ import annotations

from datetime import timedelta
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

#: A run's outcome is its worst proposal's, in this order; a run whose proposals all executed
#: is `executed`, one with none `no_proposals`.
RUN_OUTCOMES = ("failed", "expired", "rejected", "denied", "executed")


def run_outcome(summary: dict[str, str]) -> str:
    """The run's outcome for `charter_runs`, from `finish_run`'s summary (proposal id -> final
    status, or the reasoning failure's marker)."""
    if summary.get("reasoning") == "failed":
        return "reasoning_failed"
    statuses = set(summary.values())
    if not statuses:
        return "no_proposals"
    return next((outcome for outcome in RUN_OUTCOMES if outcome in statuses), "other")


def record_time_to_decision(outcome: str, waited: timedelta) -> None:
    """From inside `record_decision`: the exception opened `waited` ago was just closed."""
    activity.metric_meter().create_histogram_float(
        "charter_time_to_decision",
        "Seconds from an exception's opening to the decision that closed it, by outcome",
        "s",
    ).record(max(waited.total_seconds(), 0.0), {"outcome": outcome})


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
        self.runs = meter.create_counter("charter_runs", "Runs finished, by outcome")
        self.proposals = meter.create_counter(
            "charter_proposals", "Proposals judged by the gate, by verdict"
        )
        self.refusals = meter.create_counter(
            "charter_act_refusals", "Final refusals of the act activity, by error type"
        )

    def stage(self, stage: str, outcome: str) -> None:
        self.stages.add(1, {"stage": stage, "outcome": outcome})

    def judged(self, stage: str, verdict: str) -> None:
        # Counted once the verdict is recorded: a failed attempt is retried and counted then.
        if stage == "gate":
            self.proposals.add(1, {"verdict": verdict})

    def refused(self, stage: str, exc: ApplicationError) -> None:
        # Only a final refusal: a retryable error (the books unreachable) is tried again.
        if stage == "act" and exc.non_retryable:
            self.refusals.add(1, {"error_type": exc.type or "ApplicationError"})

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
        activity_type = activity.info().activity_type
        if activity_type == "finish_run":
            result = await super().execute_activity(input)
            summary = getattr(input.args[0], "summary", None) if input.args else None
            if isinstance(summary, dict):
                _Counters().runs.add(1, {"outcome": run_outcome(summary)})
            return result
        stage = STAGES.get(activity_type)
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
                counters.refused(stage, exc)
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
                counters.judged(stage, outcome)
            counters.usage(result)
            return result


class StageInterceptor(Interceptor):
    """Put it after `TracingInterceptor`, so that its spans are children of the SDK's."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer or trace.get_tracer("charter")

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StageActivityInbound(next, self._tracer)
