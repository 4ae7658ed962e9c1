"""Typed inputs and outputs of the activities the `AgentLoop` workflow calls.

Activities receive identifiers and facts, never credentials: a connector resolves what it
needs inside the activity.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from schemas.books import Observation
from schemas.constitution import Constitution
from schemas.decision import Decision
from schemas.proposal import Proposal, ProposedAction
from schemas.reasoning import ReasoningFailure, TokenUsage
from schemas.verdict import Verdict


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRef(_Msg):
    tenant_id: str
    agent: str
    workflow_id: str
    run_id: str


class StartRunInput(_Msg):
    run: RunRef
    trigger: str
    requested_by: str | None
    constitution_version: int | None


class RunContext(_Msg):
    constitution: Constitution
    approvers: list[str]
    """Members allowed to decide, as of the start of the run (re-checked before acting)."""
    approver_roles: dict[str, list[str]] = {}
    """Each approver's roles, for rules that name the roles allowed to approve."""


class ObserveInput(_Msg):
    run: RunRef
    focus: list[str] = []


class ReasonInput(_Msg):
    run: RunRef
    observation: Observation
    constitution: Constitution


class ReasonOutput(_Msg):
    reasoner: str
    proposals: list[ProposedAction]
    # Added with the Claude reasoner; defaults keep older histories' payloads valid.
    usage: TokenUsage | None = None
    failure: ReasoningFailure | None = None
    """Set when the reply could not be read as proposals: `proposals` is then empty."""


class ReasoningFailureInput(_Msg):
    run: RunRef
    failure: ReasoningFailure
    expires_at: datetime


class RecordVerdictInput(_Msg):
    run: RunRef
    proposal: Proposal
    verdict: Verdict
    observation: Observation
    expires_at: datetime | None


class VerdictRecord(_Msg):
    exception_id: str | None


class GatedProposal(_Msg):
    """One proposal of a run and the gate's verdict on it, as `record_verdicts` records it."""

    proposal: Proposal
    verdict: Verdict
    expires_at: datetime | None


class RecordVerdictsInput(_Msg):
    """Every verdict of a run, in gating order: recorded in one transaction."""

    run: RunRef
    gated: list[GatedProposal]
    observation: Observation
    """Whole when a verdict escalates (an exception shows the facts), else its header only."""


class VerdictRecords(_Msg):
    records: list[VerdictRecord]
    """One per gated proposal, in the same order."""


class RecordDecisionInput(_Msg):
    run: RunRef
    proposal: Proposal
    verdict: Verdict
    exception_id: str
    decision: Decision
    approved: Proposal | None = None
    """With an edit: the edited parameters the approval is bound to."""
    approved_verdict: Verdict | None = None
    """With an edit: the gate's verdict on the edited parameters."""


class ActInput(_Msg):
    run: RunRef
    proposal: Proposal
    decision_deadline: datetime | None = None
    """Until when an exception the act opens (facts or law changed, a limit reached) waits
    for a human; the run's own decision deadline."""


class ExceptionEventInput(_Msg):
    run: RunRef
    proposal_id: str
    exception_id: str
    event: str
    """`reminder` or `expired`."""


class FinishRunInput(_Msg):
    run: RunRef
    summary: dict[str, str]
