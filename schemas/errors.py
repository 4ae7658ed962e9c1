"""Every error type that crosses the contract, defined once.

A caller of `AgentLoop` sees these as the `type` of a Temporal `ApplicationError`: an update
refused by the workflow, an activity failure the workflow passes on, or a run that fails.
Each type says whether a retry can help: the workflow's retry policy lists the
non-retryable ones, so one definition decides both what callers read and what is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorType(StrEnum):
    # The `decide` update or signal, refused by the workflow or by the database's re-check.
    NOT_READY = "NotReady"
    UNKNOWN_PROPOSAL = "UnknownProposal"
    NOT_AWAITING_DECISION = "NotAwaitingDecision"
    UNAUTHORISED_APPROVER = "UnauthorisedApprover"
    SELF_APPROVAL = "SelfApproval"
    DUPLICATE_APPROVAL = "DuplicateApproval"
    INVALID_DECISION = "InvalidDecision"
    EDIT_AFTER_APPROVAL = "EditAfterApproval"
    EDIT_DENIED = "EditDenied"
    AMENDMENT_REFUSED = "AmendmentRefused"
    DECISION_NOT_RECORDED = "DecisionNotRecorded"
    UNSIGNED_DECISION = "UnsignedDecision"
    INVALID_STATEMENT = "InvalidStatement"
    # Activities: acting, reading, reasoning, starting a run.
    NOT_AUTHORISED = "NotAuthorised"
    UNSUPPORTED_ACTION = "UnsupportedAction"
    CREDENTIAL_UNAVAILABLE = "CredentialUnavailable"
    ACTION_REFUSED_BY_BOOKS = "ActionRefusedByBooks"
    CONCURRENT = "Concurrent"
    BACK_TO_HUMANS = "BackToHumans"
    REFUSED_AT_EXECUTION = "RefusedAtExecution"
    FACTS_UNSTABLE = "FactsUnstable"
    RESERVATION_LAPSED = "ReservationLapsed"
    OUTCOME_UNKNOWN = "OutcomeUnknown"
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"
    CONNECTOR_ERROR = "ConnectorError"
    REASONER_REQUEST_REJECTED = "ReasonerRequestRejected"
    REASONER_AUTHENTICATION_FAILED = "ReasonerAuthenticationFailed"
    REASONER_UNAVAILABLE = "ReasonerUnavailable"
    CONSTITUTION_NOT_FOUND = "ConstitutionNotFound"
    INVALID_ACTIVITY_INPUT = "InvalidActivityInput"
    # The AuditCheckpoint workflow: verify the chains, sign their heads into a sink.
    AUDIT_CHAIN_BROKEN = "AuditChainBroken"
    AUDIT_CHECKPOINT_INVALID = "AuditCheckpointInvalid"
    AUDIT_SINK_UNAVAILABLE = "AuditSinkUnavailable"

    @property
    def retryable(self) -> bool:
        return _SPECS[self].retryable

    @property
    def description(self) -> str:
        return _SPECS[self].when


@dataclass(frozen=True)
class _Spec:
    retryable: bool
    when: str


_SPECS: dict[ErrorType, _Spec] = {
    ErrorType.NOT_READY: _Spec(False, "a decision arrived before the run reached a decision point"),
    ErrorType.UNKNOWN_PROPOSAL: _Spec(
        False, "the decision names a proposal this run does not have"
    ),
    ErrorType.NOT_AWAITING_DECISION: _Spec(
        False, "the proposal is already decided, expired, or another decision is in flight"
    ),
    ErrorType.UNSIGNED_DECISION: _Spec(
        False, "the decision carries no signed statement (or its member has no key here)"
    ),
    ErrorType.INVALID_STATEMENT: _Spec(
        False,
        "the decision's signed statement does not verify: signature, key, binding to this "
        "run, proposal and parameters, validity window or nonce",
    ),
    ErrorType.UNAUTHORISED_APPROVER: _Spec(
        False, "the decider is not an active approver, or lacks a role the matched rules name"
    ),
    ErrorType.SELF_APPROVAL: _Spec(False, "the decider is the member who requested the run"),
    ErrorType.DUPLICATE_APPROVAL: _Spec(False, "the decider has already decided on the proposal"),
    ErrorType.INVALID_DECISION: _Spec(
        False, "the decision is malformed, or an edit comes with something other than an approval"
    ),
    ErrorType.EDIT_AFTER_APPROVAL: _Spec(
        False, "an edit arrives after the current parameters already have approvals"
    ),
    ErrorType.EDIT_DENIED: _Spec(False, "the gate denies the edited parameters"),
    ErrorType.AMENDMENT_REFUSED: _Spec(
        False, "the amendment asked for with an approval cannot be made"
    ),
    ErrorType.DECISION_NOT_RECORDED: _Spec(
        True, "the database could not record the decision; nothing changed, try again"
    ),
    ErrorType.NOT_AUTHORISED: _Spec(
        False, "the act activity finds no valid authorisation in the database for the action"
    ),
    ErrorType.UNSUPPORTED_ACTION: _Spec(False, "the connector cannot perform the action"),
    ErrorType.CREDENTIAL_UNAVAILABLE: _Spec(
        False, "no credential of the right scope exists, or the connector refused it"
    ),
    ErrorType.ACTION_REFUSED_BY_BOOKS: _Spec(
        False, "the books refused the action before writing anything"
    ),
    ErrorType.CONCURRENT: _Spec(True, "another attempt executed the same action at the same time"),
    ErrorType.BACK_TO_HUMANS: _Spec(
        False,
        "re-judged at execution (fresh facts, the version in force, the limits), the action "
        "did not execute and an exception now waits for a human; its id is the first detail",
    ),
    ErrorType.REFUSED_AT_EXECUTION: _Spec(
        False,
        "re-judged at execution, a version denies the action, a limit denies it, or the facts "
        "an approval was given on have changed",
    ),
    ErrorType.FACTS_UNSTABLE: _Spec(
        False,
        "the action was sent back to humans as often as allowed and its facts moved again: "
        "it is closed unexecuted; the message lists what changed each time",
    ),
    ErrorType.RESERVATION_LAPSED: _Spec(
        True, "the action's spend reservation expired before it executed; reserved anew on retry"
    ),
    ErrorType.OUTCOME_UNKNOWN: _Spec(
        True,
        "a request to the provider got no clear answer and no write under the action's "
        "idempotency key was found; the next attempt looks again before it creates anything",
    ),
    ErrorType.PROVIDER_UNAVAILABLE: _Spec(
        True, "the provider turned the request away (rate limit, outage) before applying it"
    ),
    ErrorType.CONNECTOR_ERROR: _Spec(
        False,
        "the connector or the provider refused the request itself (an agent no connector "
        "serves, an error the provider says retrying cannot change)",
    ),
    ErrorType.REASONER_REQUEST_REJECTED: _Spec(
        False, "the model provider rejected the request itself"
    ),
    ErrorType.REASONER_AUTHENTICATION_FAILED: _Spec(
        False, "the model provider refused the credentials"
    ),
    ErrorType.REASONER_UNAVAILABLE: _Spec(
        True, "the model provider is rate limiting, overloaded or unreachable"
    ),
    ErrorType.CONSTITUTION_NOT_FOUND: _Spec(
        False, "the tenant has no constitution of the version the run asks for"
    ),
    ErrorType.INVALID_ACTIVITY_INPUT: _Spec(
        False, "an activity was called with input it can never accept (a workflow bug)"
    ),
    ErrorType.AUDIT_CHAIN_BROKEN: _Spec(
        False,
        "a tenant's audit chain does not verify (a rewritten, missing or reordered entry, a "
        "head that contradicts a signed checkpoint, a spend ledger that differs from the "
        "trail): nothing is signed for it; the details name the tenant and the first bad seq",
    ),
    ErrorType.AUDIT_CHECKPOINT_INVALID: _Spec(
        False,
        "a checkpoint already in the sink does not verify under the worker's signing key, or "
        "the worker has no signing key",
    ),
    ErrorType.AUDIT_SINK_UNAVAILABLE: _Spec(
        True, "the checkpoint sink (file or object store) could not be read or written"
    ),
}

#: What the workflow's retry policy never retries.
NON_RETRYABLE: list[str] = [str(t) for t in ErrorType if not t.retryable]


def catalogue() -> dict[str, Any]:
    """The catalogue as exported beside the JSON Schemas, for callers in other languages."""
    return {
        "title": "ErrorTypes",
        "description": "The `type` of every ApplicationError Charter raises across its contract.",
        "errors": [
            {"type": str(t), "retryable": t.retryable, "when": t.description} for t in ErrorType
        ],
    }
