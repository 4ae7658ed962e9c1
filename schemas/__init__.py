"""Typed messages for every workflow and activity input and output.

Dependency direction: schemas import nothing from the rest of Charter.
"""

from schemas.books import (
    AdCampaign,
    BankAccount,
    Invoice,
    Observation,
    PayrollRun,
    Vendor,
)
from schemas.constitution import (
    ActionType,
    AmendmentOrigin,
    Constitution,
    ConstitutionDocument,
    Defaults,
    Effect,
    Limit,
    LimitScope,
    Rule,
    SpendWindow,
)
from schemas.decision import AmendmentRequest, Decision, DecisionReceipt, ProposalEdit
from schemas.proposal import Proposal, ProposedAction
from schemas.reasoning import (
    MAX_PROPOSALS,
    REASONING_FAILURE_PROPOSAL_ID,
    ReasoningFailure,
    TokenUsage,
)
from schemas.run import (
    ActionResult,
    AgentRunInput,
    AgentRunResult,
    AuditHead,
    ProposalState,
    ProposalStatus,
    RunState,
    Stage,
    legacy_workflow_id_for,
    schedule_id_for,
    scheduled_workflow_id_prefix,
    workflow_id_for,
)
from schemas.spend import SpendSnapshot, SpendTotals
from schemas.verdict import (
    CitationCheck,
    EscalationCause,
    LimitBreach,
    Outcome,
    RuleError,
    RuleMatch,
    Verdict,
)

__all__ = [
    "MAX_PROPOSALS",
    "REASONING_FAILURE_PROPOSAL_ID",
    "ActionResult",
    "ActionType",
    "AdCampaign",
    "AgentRunInput",
    "AgentRunResult",
    "AmendmentOrigin",
    "AmendmentRequest",
    "AuditHead",
    "BankAccount",
    "CitationCheck",
    "Constitution",
    "ConstitutionDocument",
    "Decision",
    "DecisionReceipt",
    "Defaults",
    "Effect",
    "EscalationCause",
    "Invoice",
    "Limit",
    "LimitBreach",
    "LimitScope",
    "Observation",
    "Outcome",
    "PayrollRun",
    "Proposal",
    "ProposalEdit",
    "ProposalState",
    "ProposalStatus",
    "ProposedAction",
    "ReasoningFailure",
    "Rule",
    "RuleError",
    "RuleMatch",
    "RunState",
    "SpendSnapshot",
    "SpendTotals",
    "SpendWindow",
    "Stage",
    "TokenUsage",
    "Vendor",
    "Verdict",
    "legacy_workflow_id_for",
    "schedule_id_for",
    "scheduled_workflow_id_prefix",
    "workflow_id_for",
]

from schemas.activities import (
    ActInput,
    ExceptionEventInput,
    FinishRunInput,
    ObserveInput,
    ReasoningFailureInput,
    ReasonInput,
    ReasonOutput,
    RecordDecisionInput,
    RecordVerdictInput,
    RunContext,
    RunRef,
    StartRunInput,
    VerdictRecord,
)

__all__ += [
    "ActInput",
    "ExceptionEventInput",
    "FinishRunInput",
    "ObserveInput",
    "ReasonInput",
    "ReasonOutput",
    "ReasoningFailureInput",
    "RecordDecisionInput",
    "RecordVerdictInput",
    "RunContext",
    "RunRef",
    "StartRunInput",
    "VerdictRecord",
]
