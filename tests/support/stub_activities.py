"""Stand-ins for Charter's activities, registered under the real activity names.

A worker with these and the real `AgentLoop` runs the loop with no database, no books and
no model: every call is recorded (name and typed input) so a test can assert exactly what
the workflow asked of the world, and the replies come from a `Script` the test writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from schemas import (
    REASONING_FAILURE_PROPOSAL_ID,
    ActInput,
    ActionResult,
    AuditHead,
    Constitution,
    DecisionReceipt,
    ExceptionEventInput,
    FinishRunInput,
    Observation,
    ObserveInput,
    ProposedAction,
    ReasoningFailure,
    ReasoningFailureInput,
    ReasonInput,
    ReasonOutput,
    RecordDecisionInput,
    RecordVerdictInput,
    RecordVerdictsInput,
    RunContext,
    StartRunInput,
    VerdictRecord,
    VerdictRecords,
)

#: The names `AgentLoop` calls; `all_activities` in activities/ registers these and
#: `AuditCheckpoint`'s `checkpoint_audit`.
ACTIVITY_NAMES = (
    "start_run",
    "observe",
    "reason",
    "record_reasoning_failure",
    "record_verdict",
    "record_verdicts",
    "record_exception_event",
    "record_decision",
    "act",
    "finish_run",
)

#: The audit head every stub run ends on, so a test can see it came back through the result.
STUB_HEAD = AuditHead(seq=42, hash="ab" * 32)


@dataclass
class Script:
    """What the world answers during one run."""

    constitution: Constitution
    observation: Observation
    proposals: list[ProposedAction] = field(default_factory=list)
    failure: ReasoningFailure | None = None
    """Set: the reasoner's reply was unreadable (and `proposals` is ignored)."""
    reason_error: str | None = None
    """Set: every attempt of the reason activity fails with this retryable error type."""
    observe_error: str | None = None
    """Set: every attempt of the observe activity fails with this retryable error type."""
    approvers: list[str] = field(default_factory=lambda: ["maya", "sam"])
    approver_roles: dict[str, list[str]] = field(default_factory=dict)
    act_refusals: dict[str, str] = field(default_factory=dict)
    """proposal id -> error type the act activity refuses it with, for good."""
    decision_refusals: dict[str, str] = field(default_factory=dict)
    """approver -> error type the database re-check refuses their decisions with."""


@dataclass
class Call:
    name: str
    input: BaseModel


class StubActivities:
    """One run's worth of stub activities; `calls` lists every invocation in order."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[Call] = []

    def inputs(self, name: str) -> list[Any]:
        """The inputs of every call of one activity, in order."""
        return [c.input for c in self.calls if c.name == name]

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.start_run,
            self.observe,
            self.reason,
            self.record_reasoning_failure,
            self.record_verdict,
            self.record_verdicts,
            self.record_exception_event,
            self.record_decision,
            self.act,
            self.finish_run,
        ]

    def _record(self, input: BaseModel) -> None:
        self.calls.append(Call(activity.info().activity_type, input))

    @activity.defn(name="start_run")
    async def start_run(self, req: StartRunInput) -> RunContext:
        self._record(req)
        return RunContext(
            constitution=self.script.constitution,
            approvers=self.script.approvers,
            approver_roles=self.script.approver_roles,
        )

    @activity.defn(name="observe")
    async def observe(self, req: ObserveInput) -> Observation:
        self._record(req)
        if self.script.observe_error is not None:
            raise ApplicationError(
                "the provider turned the read away", type=self.script.observe_error
            )
        return self.script.observation

    @activity.defn(name="reason")
    async def reason(self, req: ReasonInput) -> ReasonOutput:
        self._record(req)
        if self.script.reason_error is not None:
            raise ApplicationError("the attempt failed", type=self.script.reason_error)
        if self.script.failure is not None:
            return ReasonOutput(reasoner="stub", proposals=[], failure=self.script.failure)
        return ReasonOutput(reasoner="stub", proposals=self.script.proposals)

    @activity.defn(name="record_reasoning_failure")
    async def record_reasoning_failure(self, req: ReasoningFailureInput) -> ReasoningFailure:
        self._record(req)
        return req.failure.model_copy(
            update={"exception_id": f"ex-{REASONING_FAILURE_PROPOSAL_ID}"}
        )

    @activity.defn(name="record_verdict")
    async def record_verdict(self, req: RecordVerdictInput) -> VerdictRecord:
        self._record(req)
        escalated = req.verdict.outcome == "escalate"
        return VerdictRecord(exception_id=f"ex-{req.proposal.proposal_id}" if escalated else None)

    @activity.defn(name="record_verdicts")
    async def record_verdicts(self, req: RecordVerdictsInput) -> VerdictRecords:
        self._record(req)
        return VerdictRecords(
            records=[
                VerdictRecord(
                    exception_id=f"ex-{g.proposal.proposal_id}"
                    if g.verdict.outcome == "escalate"
                    else None
                )
                for g in req.gated
            ]
        )

    @activity.defn(name="record_exception_event")
    async def record_exception_event(self, req: ExceptionEventInput) -> None:
        self._record(req)

    @activity.defn(name="record_decision")
    async def record_decision(self, req: RecordDecisionInput) -> DecisionReceipt:
        self._record(req)
        refusal = self.script.decision_refusals.get(req.decision.approver)
        if refusal is not None:
            raise ApplicationError(
                f"{req.decision.approver} refused by the stub", type=refusal, non_retryable=True
            )
        return DecisionReceipt(
            proposal_id=req.decision.proposal_id,
            outcome=req.decision.outcome,
            approver=req.decision.approver,
            decided_at=datetime.now(UTC),
        )

    @activity.defn(name="act")
    async def act(self, req: ActInput) -> ActionResult:
        self._record(req)
        refusal = self.script.act_refusals.get(req.proposal.proposal_id)
        if refusal is not None:
            raise ApplicationError("refused by the stub", type=refusal, non_retryable=True)
        return ActionResult(
            proposal_id=req.proposal.proposal_id,
            idempotency_key=f"{req.run.workflow_id}/{req.proposal.proposal_id}",
            status="executed",
            connector_reference=f"stub-{req.proposal.proposal_id}",
            executed_at=datetime.now(UTC),
        )

    @activity.defn(name="finish_run")
    async def finish_run(self, req: FinishRunInput) -> AuditHead:
        self._record(req)
        return STUB_HEAD
