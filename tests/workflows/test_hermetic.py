"""`AgentLoop`'s paths with stub activities: no PostgreSQL, no books, no model.

The real workflow runs on Temporal's time-skipping test server against the stubs in
`tests.support.stub_activities`, registered under the real activity names. Each test checks
the run's outcome and exactly what the workflow asked of the world. The integration tests
(real activities, real database) cover the other side of the same contract.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.act import ActActivities
from activities.decisions import DecisionActivities
from activities.exceptions import ExceptionActivities
from activities.read import ReadActivities
from activities.reason import ReasonActivities
from activities.run import RunActivities
from schemas import (
    REASONING_FAILURE_PROPOSAL_ID,
    AgentRunInput,
    AgentRunResult,
    BankAccount,
    Constitution,
    Decision,
    ExchangeRate,
    ProposalEdit,
    ProposedAction,
    ReasoningFailure,
    RunState,
    SpendSnapshot,
    SpendTotals,
)
from tests.support.constitutions import OBSERVED_AT, constitution, observation
from tests.support.polling import eventually
from tests.support.running import record_history
from tests.support.stub_activities import ACTIVITY_NAMES, STUB_HEAD, Script, StubActivities
from workflows import AgentLoop

LAW = """
defaults:
  min_confidence: 0.80
action_types:
  schedule_payment: {reversible: true}
  run_payroll: {reversible: false}
rules:
  - id: deny-blocked
    title: Never pay a blocked counterparty
    applies_to: [schedule_payment]
    when: counterparty == "Blocked Ltd"
    effect: deny
  - id: deny-huge
    title: Never pay more than $100,000
    applies_to: [schedule_payment]
    when: amount > 100000.0
    effect: deny
  - id: allow-bounded
    title: Pay up to $50,000
    applies_to: [schedule_payment, run_payroll]
    when: amount <= 50000.0
    effect: allow
  - id: escalate-large
    title: Above $3,000 a human decides
    applies_to: [schedule_payment]
    when: amount > 3000.0
    effect: escalate
  - id: escalate-very-large
    title: Above $20,000 two owners decide
    applies_to: [schedule_payment]
    when: amount > 20000.0
    effect: escalate
    approvals_required: 2
    approvers: [owner]
"""

LAW_VERSION = 3


def law() -> Constitution:
    return constitution(LAW, version=LAW_VERSION)


def payment(amount: str, counterparty: str = "Bluebird", **kw: Any) -> ProposedAction:
    """A payment proposal that cites every rule about payments (so citations never escalate)."""
    cited = [r.id for r in law().document.rules if "schedule_payment" in r.applies_to]
    fields: dict[str, Any] = {
        "action": "schedule_payment",
        "amount": Decimal(amount),
        "counterparty": counterparty,
        "reference": "INV-1",
        "confidence": 0.95,
        "rationale": "due this week",
        "citations": cited,
    }
    fields.update(kw)
    return ProposedAction(**fields)


def script(*proposals: ProposedAction, **kw: Any) -> Script:
    return Script(constitution=law(), observation=observation(), proposals=list(proposals), **kw)


@asynccontextmanager
async def running(
    env: WorkflowEnvironment, stubs: StubActivities, **kw: Any
) -> AsyncIterator[WorkflowHandle[AgentLoop, AgentRunResult]]:
    """A worker with the real workflow and the stubs, and one run started on it."""
    queue = f"hermetic-{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "tenant_id": "acme",
        "agent": "payables",
        "trigger": f"t-{uuid.uuid4().hex[:8]}",
        "requested_by": "rob",
    }
    fields.update(kw)
    run = AgentRunInput(**fields)
    async with Worker(env.client, task_queue=queue, workflows=[AgentLoop], activities=stubs.all()):
        handle = await env.client.start_workflow(
            AgentLoop.run, run, id=f"charter/acme/payables/{run.trigger}", task_queue=queue
        )
        try:
            yield handle
        finally:
            # A run a failed test left waiting would hold the test server's clock for the
            # module's other tests (time skips only when no run has work pending).
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("the test ended before the run did")


async def awaiting(handle: WorkflowHandle[AgentLoop, AgentRunResult]) -> RunState:
    async def check() -> RunState | None:
        state = await handle.query(AgentLoop.state)
        return state if state.stage == "awaiting_decision" else None

    return await eventually(check)


async def refusal(
    handle: WorkflowHandle[AgentLoop, AgentRunResult], payload: Any
) -> ApplicationError:
    """The error a refused decision comes back with, through the update's failure."""
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(AgentLoop.decide, payload)
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


def approve(approver: str, proposal_id: str = "p1", **kw: Any) -> Decision:
    return Decision(proposal_id=proposal_id, approver=approver, outcome="approve", **kw)


def test_stubs_cover_every_real_activity() -> None:
    """The stubs answer to the names the real worker registers, no more, no fewer."""
    real = [
        RunActivities.start_run,
        RunActivities.finish_run,
        ReadActivities.observe,
        ReasonActivities.reason,
        ReasonActivities.record_reasoning_failure,
        ExceptionActivities.record_verdict,
        ExceptionActivities.record_verdicts,
        ExceptionActivities.record_exception_event,
        DecisionActivities.record_decision,
        ActActivities.act,
    ]
    names = {activity._Definition.must_from_callable(fn).name for fn in real}
    stubs = StubActivities(script())
    assert {activity._Definition.must_from_callable(fn).name for fn in stubs.all()} == names
    assert set(ACTIVITY_NAMES) == names


async def test_inside_the_law_executes_without_anyone(time_env: WorkflowEnvironment) -> None:
    stubs = StubActivities(script(payment("1200.00"), payment("800.00", reference="INV-2")))
    async with running(time_env, stubs) as handle:
        result = await handle.result()
    assert [p.status for p in result.proposals] == ["executed", "executed"]
    assert result.constitution_version == LAW_VERSION and result.audit_head == STUB_HEAD
    assert stubs.names() == [
        "start_run",
        "observe",
        "reason",
        # Every verdict of the run in one call (a local activity), before any act.
        "record_verdicts",
        "act",
        "act",
        "finish_run",
    ]
    start = stubs.inputs("start_run")[0]
    assert start.requested_by == "rob" and start.run.workflow_id == handle.id
    (recorded,) = stubs.inputs("record_verdicts")
    verdicts = recorded.gated
    assert [v.proposal.proposal_id for v in verdicts] == ["p1", "p2"]
    assert [v.verdict.outcome for v in verdicts] == ["execute", "execute"]
    # Only an escalation opens an exception: without one, the observation's header only.
    assert recorded.observation.invoices == [] and all(v.expires_at is None for v in verdicts)
    # The two acts run side by side: either may reach the stub first.
    assert sorted(a.proposal.amount for a in stubs.inputs("act")) == [
        Decimal("800.00"),
        Decimal("1200.00"),
    ]
    assert [p.action.connector_reference for p in result.proposals if p.action] == [
        "stub-p1",
        "stub-p2",
    ]
    assert stubs.inputs("finish_run")[0].summary == {"p1": "executed", "p2": "executed"}


async def test_a_bare_number_in_dollars_sends_a_dinar_payment_to_a_human(
    time_env: WorkflowEnvironment,
) -> None:
    """KWD 999 is about $3,250: `amount <= 50000.0` is in dollars, so it cannot allow it."""
    stubs = StubActivities(script(payment("999.000", currency="KWD", reference=None)))
    async with running(time_env, stubs) as handle:
        state = await awaiting(handle)
        [ps] = state.proposals
        assert ps.status == "awaiting_decision" and ps.verdict.outcome == "escalate"
        assert {e.rule_id for e in ps.verdict.errors} >= {"allow-bounded", "deny-huge"}
        await handle.terminate("seen")
    assert "act" not in stubs.names()
    await record_history(handle, "law_reads_base_currency")


async def test_a_dollar_limit_counts_euro_spend_at_the_recorded_rate(
    time_env: WorkflowEnvironment,
) -> None:
    """EUR 3,000 spent today is $3,300 at the observation's rate: under a $5,000 daily cap
    $1,200 more fits, and $1,000 after it does not."""
    limited = LAW.replace(
        "schedule_payment: {reversible: true}", "schedule_payment: {reversible: true, spends: true}"
    ) + (
        "limits:\n  - {id: autonomous-daily, title: 'At most $5,000 a day without a human', "
        "scope: autonomous, window: P1D, amount: 5000}\n"
    )
    quoted = ExchangeRate(
        currency="EUR", base="USD", rate=Decimal("1.10"), source="treasury", as_of=OBSERVED_AT
    )
    eur = SpendTotals(total=Decimal("3000"), autonomous=Decimal("3000"))
    seen = observation(
        spend=SpendSnapshot(as_of=OBSERVED_AT, other_currencies={"EUR": {"P1D": eur}}),
        rates=[quoted],
    )
    stubs = StubActivities(
        Script(
            constitution=constitution(limited, version=LAW_VERSION),
            observation=seen,
            proposals=[payment("1200.00"), payment("1000.00", reference="INV-2")],
        )
    )
    async with running(time_env, stubs) as handle:
        state = await awaiting(handle)
        first, second = state.proposals
        assert first.verdict.outcome == "execute" and first.verdict.limits == []
        assert second.verdict.outcome == "escalate"
        [breach] = second.verdict.limits
        assert breach.spent == Decimal("4500.00") and breach.rates, breach
        await handle.terminate("seen")
    await record_history(handle, "limits_count_every_currency")


async def test_cash_in_another_currency_does_not_pay_a_dollar_payroll(
    time_env: WorkflowEnvironment,
) -> None:
    """$10,000 in the bank and EUR 80,000 beside it: a $20,000 payroll overdraws."""
    overdraft = LAW + (
        "  - {id: deny-overdraft, title: Never pay more than the cash, "
        "applies_to: [run_payroll], when: amount > total_cash, effect: deny}\n"
    )
    seen = observation(
        bank_accounts=[
            BankAccount(account_id="op", name="Operating", balance=Decimal("10000.00")),
            BankAccount(
                account_id="eu", name="Berlin", currency="EUR", balance=Decimal("80000.00")
            ),
        ]
    )
    payroll = ProposedAction(
        action="run_payroll",
        amount=Decimal("20000.00"),
        reference="PR-1",
        confidence=0.95,
        rationale="payday",
        citations=["allow-bounded", "deny-overdraft"],
    )
    stubs = StubActivities(
        Script(
            constitution=constitution(overdraft, version=LAW_VERSION),
            observation=seen,
            proposals=[payroll],
        )
    )
    async with running(time_env, stubs, agent="payroll") as handle:
        result = await handle.result()
    [ps] = result.proposals
    assert ps.verdict.outcome == "deny", ps.verdict
    assert "deny-overdraft" in {m.rule_id for m in ps.verdict.matched}
    await record_history(handle, "cash_in_the_proposals_currency")


async def test_books_a_provider_keeps_turning_away_escalate_with_nothing_to_approve(
    time_env: WorkflowEnvironment,
) -> None:
    stubs = StubActivities(script(payment("1200.00"), observe_error="ProviderUnavailable"))
    async with running(time_env, stubs) as handle:
        result = await handle.result()
    failure = result.reasoning_failure
    assert failure is not None and failure.kind == "books_unavailable", failure
    assert failure.message == "the books could not be read: the provider turned the read away"
    assert result.proposals == []
    names = stubs.names()
    assert names.count("observe") == 20 and "reason" not in names and "act" not in names
    assert names[-2:] == ["record_reasoning_failure", "finish_run"]
    await record_history(handle, "unreadable_books_escalate")


async def test_a_read_refused_for_good_still_fails_the_run(time_env: WorkflowEnvironment) -> None:
    """A refused credential is for an operator to fix, not for a human to decide."""
    stubs = StubActivities(script(payment("1200.00"), observe_error="CredentialUnavailable"))
    async with running(time_env, stubs) as handle:
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert stubs.names().count("observe") == 1


async def test_a_deny_rule_stops_a_proposal_and_not_the_others(
    time_env: WorkflowEnvironment,
) -> None:
    stubs = StubActivities(script(payment("900.00", "Blocked Ltd"), payment("900.00")))
    async with running(time_env, stubs) as handle:
        result = await handle.result()
    denied, paid = result.proposals
    assert denied.status == "denied" and denied.action is None and denied.exception_id is None
    assert denied.verdict is not None and [
        m.rule_id for m in denied.verdict.matched if m.effect == "deny"
    ] == ["deny-blocked"]
    assert paid.status == "executed"
    assert [a.proposal.proposal_id for a in stubs.inputs("act")] == ["p2"]
    assert stubs.inputs("finish_run")[0].summary == {"p1": "denied", "p2": "executed"}


async def test_escalation_waits_and_an_approval_executes(time_env: WorkflowEnvironment) -> None:
    stubs = StubActivities(script(payment("4000.00")))
    async with running(time_env, stubs) as handle:
        state = await awaiting(handle)
        ps = state.proposals[0]
        assert ps.status == "awaiting_decision" and ps.exception_id == "ex-p1"
        # Nothing executes before the human: the exception was opened with the full records.
        assert "act" not in stubs.names()
        recorded = stubs.inputs("record_verdicts")[0]
        (opened,) = recorded.gated
        assert opened.verdict.outcome == "escalate" and recorded.observation.invoices != []
        assert opened.expires_at == ps.expires_at is not None

        receipt = await handle.execute_update(AgentLoop.decide, approve("maya", reason="known"))
        assert receipt.approver == "maya" and receipt.outcome == "approve"
        result = await handle.result()
    assert result.proposals[0].status == "executed"
    assert [d.approver for d in result.proposals[0].decisions] == ["maya"]
    recorded = stubs.inputs("record_decision")
    assert len(recorded) == 1 and recorded[0].exception_id == "ex-p1"
    assert recorded[0].decision == approve("maya", reason="known") and recorded[0].approved is None
    assert [a.proposal.amount for a in stubs.inputs("act")] == [Decimal("4000.00")]
    assert "record_exception_event" not in stubs.names()


async def test_a_rejection_ends_the_proposal(time_env: WorkflowEnvironment) -> None:
    stubs = StubActivities(script(payment("4000.00")))
    async with running(time_env, stubs) as handle:
        await awaiting(handle)
        await handle.execute_update(
            AgentLoop.decide, Decision(proposal_id="p1", approver="sam", outcome="reject")
        )
        result = await handle.result()
    assert result.proposals[0].status == "rejected" and result.proposals[0].action is None
    assert "act" not in stubs.names()
    assert stubs.inputs("finish_run")[0].summary == {"p1": "rejected"}


async def test_approve_with_edit_regates_and_executes_the_edit(
    time_env: WorkflowEnvironment,
) -> None:
    stubs = StubActivities(script(payment("4000.00")))
    async with running(time_env, stubs) as handle:
        await awaiting(handle)
        # An edit the law denies is refused before anything is recorded.
        denied = await refusal(handle, approve("maya", edit=ProposalEdit(amount=Decimal("150000"))))
        assert denied.type == "EditDenied"
        assert "record_decision" not in stubs.names()
        # Only an approval may edit.
        rejecting = Decision(
            proposal_id="p1",
            approver="maya",
            outcome="reject",
            edit=ProposalEdit(amount=Decimal(1)),
        )
        assert (await refusal(handle, rejecting)).type == "InvalidDecision"

        await handle.execute_update(
            AgentLoop.decide, approve("maya", edit=ProposalEdit(amount=Decimal("2500.00")))
        )
        result = await handle.result()
    ps = result.proposals[0]
    assert ps.status == "executed"
    assert ps.proposal.amount == Decimal("4000.00")
    assert ps.approved is not None and ps.approved.amount == Decimal("2500.00")
    assert ps.executed == ps.approved
    assert ps.approved_verdict is not None and ps.approved_verdict.outcome == "execute"
    recorded = stubs.inputs("record_decision")[0]
    assert recorded.approved == ps.approved and recorded.approved_verdict == ps.approved_verdict
    assert [a.proposal.amount for a in stubs.inputs("act")] == [Decimal("2500.00")]


async def test_a_quorum_of_two_owners(time_env: WorkflowEnvironment) -> None:
    roles = {"maya": ["owner"], "sam": ["owner"], "lee": ["finance"], "rob": ["owner"]}
    stubs = StubActivities(
        script(payment("30000.00"), approvers=["maya", "sam", "lee", "rob"], approver_roles=roles)
    )
    async with running(time_env, stubs) as handle:
        state = await awaiting(handle)
        assert state.proposals[0].verdict is not None
        assert state.proposals[0].verdict.approvals_required == 2

        await handle.execute_update(AgentLoop.decide, approve("maya"))
        state = await handle.query(AgentLoop.state)
        assert state.proposals[0].status == "awaiting_decision"
        assert "act" not in stubs.names()

        # The same decision again is answered with what was recorded; a second opinion by
        # the same approver is refused.
        again = await handle.execute_update(AgentLoop.decide, approve("maya"))
        assert again.approver == "maya" and again.approvals == 1
        second = approve("maya", reason="on reflection")
        assert (await refusal(handle, second)).type == "DuplicateApproval"
        assert (await refusal(handle, approve("lee"))).type == "UnauthorisedApprover"
        assert (await refusal(handle, approve("rob"))).type == "SelfApproval"
        assert (await refusal(handle, approve("zed"))).type == "UnauthorisedApprover"
        assert (await refusal(handle, approve("sam", "p7"))).type == "UnknownProposal"
        malformed = await refusal(handle, {"proposal_id": "p1", "approver": "sam"})
        assert malformed.type == "InvalidDecision" and "outcome" in malformed.message
        # Refusals by the workflow itself never reach the database.
        assert [d.decision.approver for d in stubs.inputs("record_decision")] == ["maya"]

        await handle.execute_update(AgentLoop.decide, approve("sam"))
        result = await handle.result()
    ps = result.proposals[0]
    assert ps.status == "executed" and [d.approver for d in ps.decisions] == ["maya", "sam"]
    assert len(stubs.inputs("act")) == 1


async def test_nobody_decides_reminders_then_expiry(time_env: WorkflowEnvironment) -> None:
    stubs = StubActivities(script(payment("4000.00"), payment("5000.00", reference="INV-2")))
    async with running(
        time_env, stubs, decision_timeout=timedelta(days=3), reminder_interval=timedelta(days=1)
    ) as handle:
        # result() lets the server skip time: three days pass in moments.
        result = await handle.result()
    assert [p.status for p in result.proposals] == ["expired", "expired"]
    events = [(e.proposal_id, e.event) for e in stubs.inputs("record_exception_event")]
    # A reminder at the end of day one and day two for each, then the expiry at day three
    # (the events of one round are recorded side by side, in either order).
    assert [sorted(events[i : i + 2]) for i in (0, 2, 4)] == [
        [("p1", "reminder"), ("p2", "reminder")],
        [("p1", "reminder"), ("p2", "reminder")],
        [("p1", "expired"), ("p2", "expired")],
    ]
    assert {e.exception_id for e in stubs.inputs("record_exception_event")} == {"ex-p1", "ex-p2"}
    assert "act" not in stubs.names() and "record_decision" not in stubs.names()
    assert stubs.inputs("finish_run")[0].summary == {"p1": "expired", "p2": "expired"}


async def test_an_unreadable_reply_escalates_and_nothing_executes(
    time_env: WorkflowEnvironment,
) -> None:
    failure = ReasoningFailure(
        message="the reply is not proposals",
        problems=["proposals.0.amount: not a number"],
        raw_replies=['{"proposals": [{"amount": "lots"}]}'],
    )
    stubs = StubActivities(script(payment("10.00"), failure=failure))
    async with running(time_env, stubs, decision_timeout=timedelta(days=2)) as handle:
        result = await handle.result()
    assert result.proposals == []
    assert result.reasoning_failure == failure.model_copy(
        update={"exception_id": f"ex-{REASONING_FAILURE_PROPOSAL_ID}"}
    )
    assert stubs.names() == [
        "start_run",
        "observe",
        "reason",
        "record_reasoning_failure",
        "finish_run",
    ]
    recorded = stubs.inputs("record_reasoning_failure")[0]
    assert recorded.failure == failure and recorded.expires_at is not None
    assert stubs.inputs("finish_run")[0].summary == {
        "reasoning": "failed",
        "escalated": REASONING_FAILURE_PROPOSAL_ID,
    }


async def test_a_reason_activity_out_of_retries_escalates_model_unavailable(
    time_env: WorkflowEnvironment,
) -> None:
    """Every attempt lost (the activity never reached its own budget): the run still ends
    with a human told, never as a failed run, and nothing executes."""
    stubs = StubActivities(script(payment("10.00"), reason_error="WorkerLost"))
    async with running(time_env, stubs, decision_timeout=timedelta(days=2)) as handle:
        result = await handle.result()
        await record_history(handle, "reason_retries_exhausted")
    failure = result.reasoning_failure
    assert failure is not None and failure.kind == "model_unavailable"
    assert (
        failure.message == "the reason activity's retries ran out: WorkerLost: the attempt failed"
    )
    assert result.proposals == []
    assert len(stubs.inputs("reason")) == 60  # the workflow's backstop, then the escalation
    assert stubs.names()[-2:] == ["record_reasoning_failure", "finish_run"]
    assert "act" not in stubs.names()


async def test_an_act_refusal_fails_only_that_proposal(time_env: WorkflowEnvironment) -> None:
    stubs = StubActivities(
        script(
            payment("700.00"),
            payment("600.00", reference="INV-2"),
            act_refusals={"p1": "NotAuthorised"},
        )
    )
    async with running(time_env, stubs) as handle:
        result = await handle.result()
    refused, paid = result.proposals
    assert refused.status == "failed" and refused.action is None and refused.executed is None
    assert refused.failure == "NotAuthorised: refused by the stub"
    assert paid.status == "executed"
    # Non-retryable: one attempt at p1, then the run goes on.
    assert sorted(a.proposal.proposal_id for a in stubs.inputs("act")) == ["p1", "p2"]
    assert stubs.inputs("finish_run")[0].summary == {"p1": "failed", "p2": "executed"}


async def test_the_database_recheck_refuses_a_decision(time_env: WorkflowEnvironment) -> None:
    """A refusal by `record_decision` comes back to the caller with its own type; the
    exception stays open and a later decision still counts."""
    stubs = StubActivities(
        script(payment("4000.00"), decision_refusals={"sam": "UnauthorisedApprover"})
    )
    async with running(time_env, stubs) as handle:
        await awaiting(handle)
        refused = await refusal(handle, approve("sam"))
        assert refused.type == "UnauthorisedApprover"
        assert refused.message == "decision refused: sam refused by the stub"
        state = await handle.query(AgentLoop.state)
        assert (
            state.proposals[0].status == "awaiting_decision" and state.proposals[0].decisions == []
        )

        await handle.execute_update(AgentLoop.decide, approve("maya"))
        result = await handle.result()
    assert result.proposals[0].status == "executed"
    assert [d.decision.approver for d in stubs.inputs("record_decision")] == ["sam", "maya"]
