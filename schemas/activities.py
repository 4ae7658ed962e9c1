"""Typed inputs and outputs of the activities the `AgentLoop` workflow calls.

Activities receive identifiers and facts, never credentials: a connector resolves what it
needs inside the activity.
"""

from __future__ import annotations

from datetime import datetime

from schemas.books import Observation
from schemas.constitution import Constitution
from schemas.decision import Decision
from schemas.frozen import FrozenModel
from schemas.proposal import Proposal, ProposedAction
from schemas.reasoning import ReasoningFailure, TokenUsage
from schemas.verdict import Verdict


class RunRef(FrozenModel):
    tenant_id: str
    agent: str
    workflow_id: str
    run_id: str


class StartRunInput(FrozenModel):
    run: RunRef
    trigger: str
    requested_by: str | None
    constitution_version: int | None


class RunContext(FrozenModel):
    constitution: Constitution
    approvers: list[str]
    """Members allowed to decide, as of the start of the run (re-checked before acting)."""
    approver_roles: dict[str, list[str]] = {}
    """Each approver's roles, for rules that name the roles allowed to approve."""


class ObserveInput(FrozenModel):
    run: RunRef
    focus: list[str] = []


class ReasonInput(FrozenModel):
    run: RunRef
    observation: Observation
    constitution: Constitution


class ReasonOutput(FrozenModel):
    reasoner: str
    proposals: list[ProposedAction]
    # Added with the Claude reasoner; defaults keep older histories' payloads valid.
    usage: TokenUsage | None = None
    failure: ReasoningFailure | None = None
    """Set when the reply could not be read as proposals: `proposals` is then empty."""


class ReasoningFailureInput(FrozenModel):
    run: RunRef
    failure: ReasoningFailure
    expires_at: datetime


class _JudgedProposal(FrozenModel):
    """A proposal of a run and the gate's verdict on it, for an activity that records it."""

    run: RunRef
    proposal: Proposal
    verdict: Verdict


class RecordVerdictInput(_JudgedProposal):
    observation: Observation
    expires_at: datetime | None


class VerdictRecord(FrozenModel):
    exception_id: str | None


class GatedProposal(FrozenModel):
    """One proposal of a run and the gate's verdict on it, as `record_verdicts` records it."""

    proposal: Proposal
    verdict: Verdict
    expires_at: datetime | None


class RecordVerdictsInput(FrozenModel):
    """Every verdict of a run, in gating order: recorded in one transaction."""

    run: RunRef
    gated: list[GatedProposal]
    observation: Observation
    """Whole when a verdict escalates (an exception shows the facts), else its header only."""


class VerdictRecords(FrozenModel):
    records: list[VerdictRecord]
    """One per gated proposal, in the same order."""


class RecordDecisionInput(_JudgedProposal):
    exception_id: str
    decision: Decision
    approved: Proposal | None = None
    """With an edit: the edited parameters the approval is bound to."""
    approved_verdict: Verdict | None = None
    """With an edit: the gate's verdict on the edited parameters."""


class ActInput(FrozenModel):
    run: RunRef
    proposal: Proposal
    decision_deadline: datetime | None = None
    """Until when an exception the act opens (facts or law changed, a limit reached) waits
    for a human; the run's own decision deadline."""


class ExceptionEventInput(FrozenModel):
    run: RunRef
    proposal_id: str
    exception_id: str
    event: str
    """`reminder` or `expired`."""


class FinishRunInput(FrozenModel):
    run: RunRef
    summary: dict[str, str]
