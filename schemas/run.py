"""The `AgentLoop` workflow's public contract: its input, its result and its `state` query."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.decision import Decision
from schemas.frozen import FrozenModel
from schemas.proposal import Proposal
from schemas.reasoning import ReasoningFailure
from schemas.verdict import Verdict

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"

Stage = Literal[
    "starting", "reading", "reasoning", "gating", "awaiting_decision", "acting", "completed"
]
ProposalStatus = Literal[
    "gated",
    "awaiting_decision",
    "approved",
    "rejected",
    "expired",
    "denied",
    "executed",
    "failed",
]


#: The longest a run waits for a human.
MAX_DECISION_TIMEOUT: Final = timedelta(days=30)
#: The most often a waiting exception is recalled to its approvers.
MIN_REMINDER_INTERVAL: Final = timedelta(minutes=1)

#: The agents a run may name (the demo connector serves each of them; a test holds them equal).
KNOWN_AGENTS: Final = ("marketing", "payables", "payroll")

#: The workflow type and task queue of the public contract.
WORKFLOW_TYPE: Final = "AgentLoop"
TASK_QUEUE: Final = "charter"


class AgentRunInput(FrozenModel):
    tenant_id: str = Field(pattern=SLUG)
    agent: str = Field(pattern=SLUG)
    trigger: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
        description="What started the run (a schedule tick, a webhook id). Same trigger, same run.",
    )
    requested_by: str | None = Field(
        default=None,
        description="Member who asked for the run; they may not approve its proposals.",
    )
    constitution_version: int | None = Field(
        default=None, ge=1, description="Pin a version; default is the latest at start."
    )
    focus: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Record ids to consider (for example the invoice a webhook announced); empty: all.",
    )
    # Bounded so that the longest wait at the most frequent reminders still fits in one
    # history (the workflow also caps the number of reminders it records).
    decision_timeout: timedelta = Field(
        default=timedelta(days=7), gt=timedelta(0), le=MAX_DECISION_TIMEOUT
    )
    reminder_interval: timedelta = Field(default=timedelta(days=1), ge=MIN_REMINDER_INTERVAL)


def workflow_id_for(tenant_id: str, agent: str, trigger: str) -> str:
    """Deterministic workflow id: the same trigger can start a run only once.

    The Temporal server stores workflow ids in plaintext (its database, its visibility store,
    every history event that names the run) and the payload codec never sees them, so the
    id holds no business data: the trigger, which may name an invoice or a payee
    (`invoice-received-INV-1044`), becomes a digest. 16 hex digits of SHA-256 keep duplicate
    starts of one trigger rejected with a collision chance near 2^-32 across four billion
    triggers of one agent. The tenant and agent slugs stay readable: they are operational
    labels chosen by the operator (like a namespace or a task queue, and already search
    attributes), not records of the business, and operators filter and route by them.
    """
    digest = hashlib.sha256(trigger.encode("utf-8")).hexdigest()[:16]
    return f"charter/{tenant_id}/{agent}/{digest}"


def legacy_workflow_id_for(tenant_id: str, agent: str, trigger: str) -> str:
    """The id runs had before the trigger became a digest (`charter/{tenant}/{agent}/{trigger}`).

    Callers check it before starting so a trigger used before the upgrade is still rejected
    as a duplicate; it can go once runs started before the upgrade are past retention."""
    return f"charter/{tenant_id}/{agent}/{trigger}"


def schedule_id_for(tenant_id: str, agent: str, name: str) -> str:
    """The Temporal Schedule that runs AGENT for TENANT; `name` tells a tenant's schedules of
    one agent apart (an operator's slug such as `daily`, never business data)."""
    return f"charter-schedule/{tenant_id}/{agent}/{name}"


def scheduled_workflow_id_prefix(tenant_id: str, agent: str, name: str) -> str:
    """Runs started by a schedule: Temporal appends the scheduled time to this id
    (`...-2026-11-30T09:00:00Z`), so each tick has exactly one deterministic id."""
    return f"charter/{tenant_id}/{agent}/schedule-{name}"


class AuditHead(FrozenModel):
    seq: int
    hash: str


class ActionResult(FrozenModel):
    proposal_id: str
    idempotency_key: str
    status: Literal["executed", "already_executed"]
    connector_reference: str
    executed_at: datetime


class ProposalState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal: Proposal
    verdict: Verdict | None = None
    status: ProposalStatus = "gated"
    exception_id: str | None = None
    expires_at: datetime | None = None
    decisions: list[Decision] = []
    action: ActionResult | None = None
    approved: Proposal | None = None
    """The parameters approved, when an approver edited them (else the proposal's own)."""
    approved_verdict: Verdict | None = None
    """The gate's verdict on the edited parameters."""
    executed: Proposal | None = None
    """The parameters actually executed."""
    failure: str | None = None
    """Why an authorised proposal could not execute (status `failed`): the act activity or the
    books refused it for good. Nothing was executed."""


class RunState(BaseModel):
    """What the `state` query returns: the stage and the full context of the run."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    agent: str
    stage: Stage = "starting"
    constitution_version: int | None = None
    observation_summary: str | None = None
    proposals: list[ProposalState] = []
    reasoning_failure: ReasoningFailure | None = None
    """The reasoner's reply could not be read: the run escalated it and executed nothing."""


class AgentRunResult(FrozenModel):
    tenant_id: str
    agent: str
    constitution_version: int
    proposals: list[ProposalState]
    audit_head: AuditHead
    """The tenant's audit chain head when the run ended: anchors the chain in Temporal history."""
    reasoning_failure: ReasoningFailure | None = None
