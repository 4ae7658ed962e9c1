"""Decisions signed as their members sign them: with the member's enrolled local key, bound to
the run, proposal and parameters the workflow holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowHandle

from charter.config.settings import Settings
from charter.crypto import CryptoError, statements
from charter.services import proofs
from charter.storage.runs import proposal_digest
from schemas import Decision, DecisionReceipt, ProposalState, RunRef, RunState
from workflows import AgentLoop


async def signed(handle: WorkflowHandle[Any, Any], decision: Any) -> Any:
    """The decision with its member's signed statement; unchanged when it cannot be signed
    (no key for that member here, no such proposal, not a valid decision): those are the
    decisions the tests expect the workflow's validator to refuse before any proof is read."""
    if isinstance(decision, dict):
        try:
            decision = Decision.model_validate(decision)
        except ValueError:
            return decision
    if not isinstance(decision, Decision):
        return decision
    state: RunState = await handle.query(AgentLoop.state)
    ps = next((p for p in state.proposals if p.proposal.proposal_id == decision.proposal_id), None)
    if ps is None:
        return decision
    try:
        key = statements.load_key(state.tenant_id, decision.approver, Settings().member_key_folder)
    except CryptoError:
        return decision
    desc = await handle.describe()
    current = ps.approved or ps.proposal
    binding = proofs.Binding(
        tenant_id=state.tenant_id,
        workflow_id=handle.id,
        run_id=desc.run_id or "",
        proposal_id=decision.proposal_id,
        digest=proposal_digest(proofs.approved_parameters(current, decision.edit)),
    )
    return proofs.sign_decision(decision, key, binding, datetime.now(UTC))


async def decide(handle: WorkflowHandle[Any, Any], decision: Any, **_: Any) -> DecisionReceipt:
    """The `decide` update, signed as the approver would sign it."""
    receipt: DecisionReceipt = await handle.execute_update(
        AgentLoop.decide, await signed(handle, decision)
    )
    return receipt


async def decide_by_signal(handle: WorkflowHandle[Any, Any], decision: Any) -> None:
    await handle.signal(AgentLoop.decide_signal, await signed(handle, decision))


def sign_for(ref: RunRef, ps: ProposalState, decision: Decision) -> Decision:
    """For a direct call of `record_decision`: the decision signed for the run `ref` names,
    or unchanged when its member has no key here."""
    try:
        key = statements.load_key(ref.tenant_id, decision.approver, Settings().member_key_folder)
    except CryptoError:
        return decision
    binding = proofs.Binding(
        tenant_id=ref.tenant_id,
        workflow_id=ref.workflow_id,
        run_id=ref.run_id,
        proposal_id=decision.proposal_id,
        digest=proposal_digest(
            proofs.approved_parameters(ps.approved or ps.proposal, decision.edit)
        ),
    )
    return proofs.sign_decision(decision, key, binding, datetime.now(UTC))
