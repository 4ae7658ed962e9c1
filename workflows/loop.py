"""The body of `AgentLoop` (workflows/agent_loop.py): read -> reason -> gate -> act, or wait
(for days if need be) for a human.

The gate runs here, in the workflow, because it is pure: its verdict is recorded in history
and cannot be changed by a retried activity. Everything that touches the world (books,
database, model) is an activity.

This module is imported through the sandbox's pass-through, once per worker process, not
once per run: the sandbox re-imports a workflow's own module for every run it starts, and
this code (about 70 KiB once loaded) was most of what a cached, parked run cost the worker
beyond its state. So it must stay what pass-through code must be: no module state that a
run changes (only constants), and nothing nondeterministic (time, randomness, I/O) but
through `temporalio.workflow`. The replay tests hold it to the first.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.act import ActActivities
    from activities.decisions import DecisionActivities
    from activities.exceptions import ExceptionActivities
    from activities.read import ReadActivities
    from activities.reason import ReasonActivities
    from activities.run import RunActivities
    from charter.governance import approvals, gate, spend
    from charter.temporal import search_attributes as sa
    from charter.temporal.heartbeats import HEARTBEAT_TIMEOUT
    from charter.temporal.shared import shared_constitution
    from schemas import (
        MAX_PROPOSALS,
        REASONING_FAILURE_PROPOSAL_ID,
        ActInput,
        AgentRunInput,
        AgentRunResult,
        Constitution,
        Decision,
        DecisionReceipt,
        ExceptionEventInput,
        FinishRunInput,
        GatedProposal,
        Observation,
        ObserveInput,
        Proposal,
        ProposalState,
        ProposalStatus,
        ReasoningFailure,
        ReasoningFailureInput,
        ReasonInput,
        ReasonOutput,
        RecordDecisionInput,
        RecordVerdictInput,
        RecordVerdictsInput,
        RunRef,
        RunState,
        Stage,
        StartRunInput,
        Verdict,
    )
    from schemas.errors import ErrorType
    from workflows.retries import bounded_retry
    from workflows.summaries import activity_summary

SelfT = TypeVar("SelfT")
ParamT = TypeVar("ParamT")
ResultT = TypeVar("ResultT")

#: Nothing retries forever: 20 attempts span about eight minutes of backoff, enough to ride
#: out a database or Temporal restart; after them the failure reaches the workflow, which
#: fails the proposal concerned (act) or the run (nothing executed yet).
_RETRY = bounded_retry(first=timedelta(seconds=1), longest=timedelta(seconds=30), attempts=20)

#: The reason activity stops retrying a model itself, within the worker's configured budget
#: (at most 50 attempts), and escalates; this bound is only a backstop, and when it is
#: reached the run escalates too (`_reason`).
_REASON_RETRY = dataclasses.replace(_RETRY, maximum_attempts=60)

#: A model call may take a while, and the reason activity may make two (one corrective);
#: the reasoner's own per-request deadline is at most two minutes, and the activity cuts an
#: attempt off itself before this (`RetryBudget.attempt`).
_REASON_TIMEOUT = timedelta(minutes=5)


#: A human waits on the update while `record_decision` runs, and an expiry cannot pass while
#: a decision is in flight, so its retries are bounded: after them the decision is refused
#: (the exception stays open) instead of blocking the run forever. Eight attempts ride out
#: about 25 s of database outage (a restart, a network cut) before refusing.
_DECISION_RETRY = dataclasses.replace(
    _RETRY, maximum_interval=timedelta(seconds=5), maximum_attempts=8
)


_TIMEOUT = timedelta(seconds=60)

#: Local activities retry in the worker that runs the workflow task; a backoff longer than
#: this waits on a durable timer instead, so a database outage does not hold the task open.
_LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)

#: Reminder activities a run may record in all, whatever its interval, timeout and number of
#: waiting proposals: the interval is stretched so that the worst case (the smallest interval
#: over the longest timeout) stays far below Temporal's history limits (51,200 events).
MAX_REMINDERS = 100


async def _call(
    activity: MethodAsyncSingleParam[SelfT, ParamT, ResultT],
    arg: ParamT,
    *,
    timeout: timedelta = _TIMEOUT,
    retry_policy: RetryPolicy = _RETRY,
) -> ResultT:
    """Run an activity method, by reference, with Charter's timeouts and retry policy, and
    a summary for the Temporal UI (encrypted by the payload codec like any payload).

    Every activity heartbeats (the worker's interceptor), so a dead worker's attempt is given
    up after the short heartbeat timeout, not the start-to-close timeout."""
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=timeout,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=retry_policy,
        summary=activity_summary(activity, arg),
    )


async def _call_local(
    activity: MethodAsyncSingleParam[SelfT, ParamT, ResultT],
    arg: ParamT,
    *,
    timeout: timedelta = _TIMEOUT,
) -> ResultT:
    """Run one of a run's short database writes (its start, its verdicts, its end) as a local
    activity: in the worker running the workflow task, its result recorded as a marker, with
    no server round trip of its own. The same bounded retry policy as `_call`.

    No heartbeat timeout: a worker that dies mid-call loses its workflow task, and the task's
    own timeout hands the run (and the call) to another worker. Nothing here touches the
    world outside Charter's database: `act` stays a regular activity."""
    return await workflow.execute_local_activity_method(
        activity,
        arg,
        start_to_close_timeout=timeout,
        retry_policy=_RETRY,
        local_retry_threshold=_LOCAL_RETRY_THRESHOLD,
        summary=activity_summary(activity, arg),
    )


#: No search attribute has been upserted yet (None is a value: an unset attribute).
_UNSET = object()

_INITIAL_STATUS: dict[str, ProposalStatus] = {
    "execute": "gated",
    "escalate": "awaiting_decision",
    "deny": "denied",
}


def _parse_decision(raw: Any) -> Decision:
    try:
        return Decision.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'decision'}: {e['msg']}" for e in exc.errors()
        )
        raise ApplicationError(
            f"invalid decision: {problems}", type=ErrorType.INVALID_DECISION
        ) from None


def _cause(err: ActivityError) -> ApplicationError | None:
    cause = err.cause
    return cause if isinstance(cause, ApplicationError) else None


def _books_unavailable(err: ActivityError) -> ReasoningFailure | None:
    """The escalation for a read its provider kept turning away until the retries ran out
    (rate limits, outages, Intuit's transient faults); None for any other failure."""
    cause = _cause(err)
    if cause is None or cause.type != ErrorType.PROVIDER_UNAVAILABLE:
        return None
    if err.retry_state != RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return None
    return ReasoningFailure(
        kind="books_unavailable", message=f"the books could not be read: {cause.message}"
    )


def _judge(
    constitution: Constitution,
    proposal: Proposal,
    observation: Observation,
    earlier: list[Proposal],
) -> Verdict:
    """The gate's verdict. A bare number in a rule reads in the base currency (patch
    `law-reads-base-currency`): only a proposal in another currency can be judged otherwise
    than before, so only such a proposal consults (and records) the patch."""
    foreign = proposal.currency != constitution.document.defaults.base_currency
    currency_law = foreign and workflow.patched("law-reads-base-currency")
    # Limits convert other currencies with the observation's rates (patch
    # `limits-count-every-currency`): only where money in another currency than a limit's
    # is in play can they judge otherwise than before, so only then is the patch consulted.
    mixed = spend.mixes_currencies(constitution.document, proposal, observation.spend, earlier)
    limits_convert = mixed and workflow.patched("limits-count-every-currency")
    # Cash is counted in the proposal's currency (patch `cash-in-the-proposals-currency`):
    # only an account in another currency makes a difference.
    other_cash = any(a.currency != proposal.currency for a in observation.bank_accounts)
    cash_in_currency = other_cash and workflow.patched("cash-in-the-proposals-currency")
    return gate.evaluate(
        constitution,
        proposal,
        observation,
        earlier,
        currency_law=currency_law,
        limits_convert=limits_convert,
        cash_in_currency=cash_in_currency or not other_cash,
    )


class AgentLoopBody:
    """Everything of `AgentLoop` but its definition and its run method (which Temporal wants
    on the workflow class itself)."""

    @workflow.init
    def __init__(self, input: AgentRunInput) -> None:
        self._input = input
        self._state = RunState(tenant_id=input.tenant_id, agent=input.agent)
        self._approvers: frozenset[str] = frozenset()
        self._approver_roles: dict[str, list[str]] = {}
        self._constitution: Constitution | None = None
        self._observation: Observation | None = None
        self._deciding: set[str] = set()
        self._deadline: datetime | None = None
        # Decisions in flight and recorded, by (proposal, approver): an identical decision
        # racing one of them (an update and a signal, two CLIs) gets the recorded receipt.
        self._in_flight: dict[tuple[str, str], Decision] = {}
        self._receipts: dict[tuple[str, str], DecisionReceipt] = {}
        # Proposals whose act runs beside the wait (newer runs).
        self._acting: set[str] = set()
        self._act_tasks: list[asyncio.Task[None]] = []
        self._started = False
        # The search attribute values last upserted: each upsert is a command in history, so
        # one is sent only when a value changes (older histories upserted every time).
        self._attributes: dict[str, object] = {}
        self._upsert_changes_only = False
        # Newer runs record their start, verdicts and end in local activities, every verdict
        # of the run in one (older histories: one regular activity per record).
        self._local_records = False

    # -- queries, updates, signals ----------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> RunState:
        return self._state

    def _same(self, decision: Decision) -> bool:
        """Whether this exact decision is in flight or recorded (a resent or racing copy)."""
        key = (decision.proposal_id, decision.approver)
        earlier = self._in_flight.get(key) or next(
            (
                d
                for p in self._state.proposals
                if p.proposal.proposal_id == decision.proposal_id
                for d in p.decisions
                if d.approver == decision.approver
            ),
            None,
        )
        # Identical in every field: the same decision sent twice, not a second opinion.
        return earlier == decision

    def _check(self, decision: Decision) -> ProposalState:
        """Everything the workflow itself can check about a decision. Raises on refusal."""
        if self._started and self._same(decision):
            return self._proposal(decision.proposal_id)
        if not self._started:
            raise ApplicationError(
                "the run has not reached a decision point yet", type=ErrorType.NOT_READY
            )
        ps = self._proposal(decision.proposal_id)
        self._check_quorum_rules(ps, decision)
        return ps

    def _proposal(self, proposal_id: str) -> ProposalState:
        ps = next((p for p in self._state.proposals if p.proposal.proposal_id == proposal_id), None)
        if ps is None:
            raise ApplicationError(
                f"no proposal {proposal_id!r} in this run", type=ErrorType.UNKNOWN_PROPOSAL
            )
        return ps

    def _check_quorum_rules(self, ps: ProposalState, decision: Decision) -> None:
        """The rule book, over what the workflow holds: its approvers and their roles."""
        case = approvals.Case(
            tenant_id=self._input.tenant_id,
            proposal_id=decision.proposal_id,
            status=ps.status,
            in_flight=decision.proposal_id in self._deciding,
            verdict=ps.verdict,
            approved_verdict=ps.approved_verdict,
            decisions=[approvals.Ballot(d.approver, d.outcome) for d in ps.decisions],
            approvers=self._approvers,
            roles=self._approver_roles,
            requested_by=self._input.requested_by,
        )
        refusal = approvals.judge(case, decision, lambda: self._regate(ps, decision)[1])
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.type)

    def _regate(self, ps: ProposalState, decision: Decision) -> tuple[Proposal, Verdict]:
        """Approve-with-edit: the edited parameters go through the gate again (pure)."""
        assert decision.edit is not None
        assert self._constitution is not None and self._observation is not None
        edited = ps.proposal.model_copy(update={"amount": decision.edit.amount})
        # The same `run.*` facts as at first gating: the undenied proposals gated before it.
        before = self._state.proposals[: self._state.proposals.index(ps)]
        earlier = [p.proposal for p in before if p.status != "denied"]
        return edited, _judge(self._constitution, edited, self._observation, earlier)

    async def _apply(self, decision: Decision) -> DecisionReceipt:
        if self._started and self._same(decision):
            # A copy of a decision in flight or recorded: wait for the first, answer with its
            # receipt. If the first was refused, this one is judged afresh below.
            key = (decision.proposal_id, decision.approver)
            await workflow.wait_condition(lambda: key not in self._in_flight)
            if key in self._receipts:
                return self._receipts[key]
        ps = self._check(decision)  # again: state may have changed since the validator ran
        assert ps.verdict is not None and ps.exception_id is not None
        approved, approved_verdict = ps.approved, ps.approved_verdict
        if decision.edit is not None:
            approved, approved_verdict = self._regate(ps, decision)
        self._deciding.add(decision.proposal_id)
        key = (decision.proposal_id, decision.approver)
        self._in_flight[key] = decision
        bounded = workflow.patched("bounded-decision-retries")
        try:
            receipt = await _call(
                DecisionActivities.record_decision,
                RecordDecisionInput(
                    run=self._ref(),
                    proposal=ps.proposal,
                    verdict=ps.verdict,
                    exception_id=ps.exception_id,
                    decision=decision,
                    approved=approved,
                    approved_verdict=approved_verdict,
                ),
                retry_policy=_DECISION_RETRY if bounded else _RETRY,
            )
        except ActivityError as err:
            cause = _cause(err)
            if cause is not None and cause.non_retryable:
                raise ApplicationError(
                    f"decision refused: {cause.message}", type=cause.type
                ) from None
            # Retries ran out (e.g. the database was unreachable): nothing was recorded.
            raise ApplicationError(
                "decision not recorded, nothing changed; try again "
                f"({cause.message if cause else err})",
                type=ErrorType.DECISION_NOT_RECORDED,
            ) from None
        finally:
            self._deciding.discard(decision.proposal_id)
            self._in_flight.pop(key, None)
        self._receipts[key] = receipt
        ps.decisions.append(decision)
        ps.approved, ps.approved_verdict = approved, approved_verdict
        ps.status = approvals.status_after(
            decision.outcome,
            len(approvals.approvers(ps.decisions)),
            approvals.required(ps.verdict, ps.approved_verdict),
        )
        return receipt

    # The handlers take the raw payload and validate it themselves, so a malformed decision
    # is refused with a message naming the field, not a generic decoding failure. Callers
    # send a `schemas.Decision`.

    # Registered under the method's own name, `decide` (the public contract); the bare
    # decorator is the form whose typing lets callers get a DecisionReceipt by reference.
    @workflow.update
    async def decide(self, raw: Any) -> DecisionReceipt:
        return await self._apply(_parse_decision(raw))

    @decide.validator
    def _validate_decide(self, raw: Any) -> None:
        self._check(_parse_decision(raw))

    @workflow.signal(name="decide")
    async def decide_signal(self, raw: Any) -> None:
        """Fire-and-forget callers: same checks, but a refusal can only be logged."""
        try:
            await self._apply(_parse_decision(raw))
        except ApplicationError as err:
            workflow.logger.warning("decide signal refused: %s", err.message)

    # -- the loop ---------------------------------------------------------------------------

    def _ref(self) -> RunRef:
        info = workflow.info()
        return RunRef(
            tenant_id=self._input.tenant_id,
            agent=self._input.agent,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
        )

    def _upsert(self, *updates: SearchAttributeUpdate[Any]) -> None:
        if self._upsert_changes_only:
            updates = tuple(
                u for u in updates if self._attributes.get(u.key.name, _UNSET) != u.value
            )
            if not updates:
                return
        for u in updates:
            self._attributes[u.key.name] = u.value
        workflow.upsert_search_attributes(list(updates))

    def _stage(self, stage: Stage) -> None:
        self._state.stage = stage
        self._upsert(sa.STAGE.value_set(stage))
        # The UI's "current details" (through the codec, like summaries): stage and statuses.
        statuses = ", ".join(f"{p.proposal.proposal_id} {p.status}" for p in self._state.proposals)
        workflow.set_current_details(f"{stage}" + (f": {statuses}" if statuses else ""))

    def _outcomes(self) -> None:
        self._upsert(sa.OUTCOMES.value_set(sorted({p.status for p in self._state.proposals})))

    async def _record(
        self, activity: MethodAsyncSingleParam[SelfT, ParamT, ResultT], arg: ParamT
    ) -> ResultT:
        """A start or end of the run: local in newer runs, regular in older ones."""
        if self._local_records:
            return await _call_local(activity, arg)
        return await _call(activity, arg)

    async def _run(self, input: AgentRunInput) -> AgentRunResult:
        ref = self._ref()
        self._upsert_changes_only = workflow.patched("search-attributes-on-change")
        self._local_records = workflow.patched("local-run-records")
        self._upsert(sa.TENANT.value_set(input.tenant_id), sa.AGENT.value_set(input.agent))
        constitution = await self._start(input, ref)

        self._stage("reading")
        try:
            observation = await _call(
                ReadActivities.observe, ObserveInput(run=ref, focus=input.focus)
            )
        except ActivityError as err:
            # Books a provider would not serve past every retry go to a human, as an
            # exception with nothing to approve. Older runs failed here: they never reach
            # the patch marker, having no history past the failure.
            unread = _books_unavailable(err)
            if unread is None or not workflow.patched("unreadable-books-escalate"):
                raise
            deadline = workflow.now() + input.decision_timeout
            self._deadline = deadline
            return await self._escalate_reasoning_failure(
                input, ref, constitution.version, unread, deadline
            )
        self._observation = observation
        self._state.observation_summary = observation.summary()

        self._stage("reasoning")
        reasoned = await self._reason(
            ReasonInput(run=ref, observation=observation, constitution=constitution)
        )

        self._stage("gating")
        deadline = workflow.now() + input.decision_timeout
        self._deadline = deadline
        # An unreadable reply escalates with the raw reply; nothing executes. Older histories
        # never carry a failure, so they never reach the patch marker.
        if reasoned.failure is not None and workflow.patched("reasoning-failure-escalates"):
            return await self._escalate_reasoning_failure(
                input, ref, constitution.version, reasoned.failure, deadline
            )
        # The reason activity refuses a reply with more than MAX_PROPOSALS as unreadable, so
        # the bound never drops a proposal; it keeps proposal ids within p1..p999.
        proposals = [
            Proposal(proposal_id=f"p{n}", **proposed.model_dump())
            for n, proposed in enumerate(reasoned.proposals[:MAX_PROPOSALS], start=1)
        ]
        del reasoned  # the proposals are in the state; a parked run need not hold the reply
        if self._local_records:
            await self._gate_all(ref, constitution, observation, proposals, deadline)
        else:
            await self._gate_each(ref, constitution, observation, proposals, deadline)
        self._upsert(
            sa.ACTION_TYPES.value_set(sorted({p.proposal.action for p in self._state.proposals}))
        )
        self._outcomes()
        self._started = True

        autos = [p for p in self._state.proposals if p.status == "gated"]
        if workflow.patched("act-beside-the-wait"):
            # Every execution runs beside the wait: a slow or retrying act delays neither
            # the reminders nor the expiry of other proposals, nor any decision.
            for ps in autos:
                self._start_act(ps)
            await self._wait_beside_acts(input, deadline)
        else:
            # Older runs: autonomous executions first, then the wait, acting inline.
            if autos:
                self._stage("acting")
                for ps in autos:
                    await self._act(ps)
            await self._await_decisions(input, deadline)

        return await self._finish(input, ref, constitution.version)

    async def _start(self, input: AgentRunInput, ref: RunRef) -> Constitution:
        """Pin the constitution and the tenant's approvers as of now (`start_run`)."""
        context = await self._record(
            RunActivities.start_run,
            StartRunInput(
                run=ref,
                trigger=input.trigger,
                requested_by=input.requested_by,
                constitution_version=input.constitution_version,
            ),
        )
        # A cached run holds its constitution until it ends: the worker's shared copy.
        constitution = shared_constitution(context.constitution)
        self._approvers = frozenset(context.approvers)
        self._approver_roles = dict(context.approver_roles)
        del context
        self._constitution = constitution
        self._state.constitution_version = constitution.version
        return constitution

    async def _finish(self, input: AgentRunInput, ref: RunRef, version: int) -> AgentRunResult:
        """Once every handler is done: record the end of the run and return its audit head."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        head = await self._record(
            RunActivities.finish_run,
            FinishRunInput(
                run=ref,
                summary={p.proposal.proposal_id: p.status for p in self._state.proposals},
            ),
        )
        self._stage("completed")
        self._outcomes()
        return AgentRunResult(
            tenant_id=input.tenant_id,
            agent=input.agent,
            constitution_version=version,
            proposals=self._state.proposals,
            audit_head=head,
        )

    async def _gate_each(
        self,
        ref: RunRef,
        constitution: Constitution,
        observation: Observation,
        proposals: list[Proposal],
        deadline: datetime,
    ) -> None:
        """Older runs: gate a proposal, record its verdict in an activity of its own, next."""
        for proposal in proposals:
            # Rules see what earlier, undenied proposals of this run already commit.
            earlier = [p.proposal for p in self._state.proposals if p.status != "denied"]
            verdict = _judge(constitution, proposal, observation, earlier)
            escalated = verdict.outcome == "escalate"
            record = await _call(
                ExceptionActivities.record_verdict,
                RecordVerdictInput(
                    run=ref,
                    proposal=proposal,
                    verdict=verdict,
                    # The records are read only to open an exception; sending them with every
                    # other verdict too made history grow with proposals x observation.
                    observation=observation if escalated else observation.without_records(),
                    expires_at=deadline if escalated else None,
                ),
            )
            self._state.proposals.append(
                ProposalState(
                    proposal=proposal,
                    verdict=verdict,
                    status=_INITIAL_STATUS[verdict.outcome],
                    exception_id=record.exception_id,
                    expires_at=deadline if escalated else None,
                )
            )

    async def _gate_all(
        self,
        ref: RunRef,
        constitution: Constitution,
        observation: Observation,
        proposals: list[Proposal],
        deadline: datetime,
    ) -> None:
        """Gate every proposal, in order, then record every verdict in one local activity
        (one transaction: the chain gets them in gating order, all or none)."""
        gated: list[GatedProposal] = []
        for proposal in proposals:
            # Rules see what earlier, undenied proposals of this run already commit.
            earlier = [g.proposal for g in gated if g.verdict.outcome != "deny"]
            verdict = _judge(constitution, proposal, observation, earlier)
            escalated = verdict.outcome == "escalate"
            gated.append(
                GatedProposal(
                    proposal=proposal, verdict=verdict, expires_at=deadline if escalated else None
                )
            )
        if not gated:
            return
        escalated = any(g.verdict.outcome == "escalate" for g in gated)
        recorded = await _call_local(
            ExceptionActivities.record_verdicts,
            RecordVerdictsInput(
                run=ref,
                gated=gated,
                # The records are read only to open exceptions: one copy for all of them.
                observation=observation if escalated else observation.without_records(),
            ),
        )
        self._state.proposals.extend(
            ProposalState(
                proposal=g.proposal,
                verdict=g.verdict,
                status=_INITIAL_STATUS[g.verdict.outcome],
                exception_id=record.exception_id,
                expires_at=g.expires_at,
            )
            for g, record in zip(gated, recorded.records, strict=True)
        )

    async def _reason(self, req: ReasonInput) -> ReasonOutput:
        """The model's proposals, or why there are none. The reason activity escalates a model
        that stays unavailable itself; should its retries still run out (every attempt lost
        or cut off by Temporal's timeout), the run escalates the same way instead of failing:
        a human hears of it, nothing executes."""
        try:
            return await _call(
                ReasonActivities.reason, req, timeout=_REASON_TIMEOUT, retry_policy=_REASON_RETRY
            )
        except ActivityError as err:
            cause = _cause(err)
            if (cause is not None and cause.non_retryable) or not workflow.patched(
                "reason-exhaustion-escalates"
            ):
                raise
            reason = f"{cause.type}: {cause.message}" if cause else str(err.cause or err)
            message = f"the reason activity's retries ran out: {reason}"
            failure = ReasoningFailure(kind="model_unavailable", message=message)
            return ReasonOutput(reasoner="unknown", proposals=[], failure=failure)

    async def _escalate_reasoning_failure(
        self,
        input: AgentRunInput,
        ref: RunRef,
        constitution_version: int,
        failure: ReasoningFailure,
        deadline: datetime,
    ) -> AgentRunResult:
        """Record the unreadable reply as an exception and end the run, acting on nothing."""
        self._state.reasoning_failure = await _call(
            ReasonActivities.record_reasoning_failure,
            ReasoningFailureInput(run=ref, failure=failure, expires_at=deadline),
        )
        self._upsert(sa.OUTCOMES.value_set(["reasoning_failed"]))
        self._started = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        head = await self._record(
            RunActivities.finish_run,
            FinishRunInput(
                run=ref,
                summary={"reasoning": "failed", "escalated": REASONING_FAILURE_PROPOSAL_ID},
            ),
        )
        self._stage("completed")
        return AgentRunResult(
            tenant_id=input.tenant_id,
            agent=input.agent,
            constitution_version=constitution_version,
            proposals=[],
            audit_head=head,
            reasoning_failure=self._state.reasoning_failure,
        )

    async def _act(self, ps: ProposalState) -> None:
        # After approve-with-edit, the approved parameters are what executes.
        executing = ps.approved or ps.proposal
        try:
            ps.action = await _call(
                ActActivities.act,
                ActInput(run=self._ref(), proposal=executing, decision_deadline=self._deadline),
            )
        except ActivityError as err:
            # A final refusal (not authorised, refused by the books, no credential) concerns
            # this proposal only: it fails, nothing executed, and the run goes on with the
            # others. Older runs failed as a whole; the patch keeps their histories replaying.
            cause = _cause(err)
            if cause is None or not cause.non_retryable:
                # Retries ran out (the connector or the database stayed unreachable): the
                # proposal fails with the last error, the run goes on. An intent without a
                # result stays pending in the audit trail for reconciliation.
                exhausted = err.retry_state in (
                    RetryState.MAXIMUM_ATTEMPTS_REACHED,
                    RetryState.TIMEOUT,
                )
                if not exhausted or not workflow.patched("exhausted-act-fails-the-proposal"):
                    raise
                ps.status = "failed"
                reason = f"{cause.type}: {cause.message}" if cause else str(err)
                ps.failure = f"retries exhausted: {reason}"
                self._outcomes()
                return
            if not workflow.patched("act-refusal-fails-the-proposal"):
                raise
            if cause.type == ErrorType.BACK_TO_HUMANS and workflow.patched(
                "act-sends-back-to-humans"
            ):
                # Re-judged at execution (fresh facts, the law in force, the limits): it did
                # not execute, and an exception now waits for a human like any other.
                details = list(cause.details)
                if ps.decisions and workflow.patched("approval-sent-back-anew"):
                    # What they approved no longer holds: the new exception is decided
                    # afresh, and the old decisions (superseded in the database) no longer
                    # count or stand in the way of the same members deciding again.
                    ps.decisions = []
                ps.status = "awaiting_decision"
                ps.exception_id = str(details[0]) if details else ps.exception_id
                ps.expires_at = self._deadline
                ps.failure = cause.message
                self._outcomes()
                return
            ps.status = "failed"
            ps.failure = f"{cause.type}: {cause.message}"
            self._outcomes()
            return
        ps.executed = executing
        ps.status = "executed"
        self._outcomes()

    async def _await_decisions(self, input: AgentRunInput, deadline: datetime) -> None:
        def waiting() -> list[ProposalState]:
            return [p for p in self._state.proposals if p.status == "awaiting_decision"]

        def approved() -> list[ProposalState]:
            return [p for p in self._state.proposals if p.status == "approved"]

        if not waiting():
            return
        self._stage("awaiting_decision")
        next_reminder = workflow.now() + input.reminder_interval
        while True:
            for ps in approved():
                self._stage("acting")
                await self._act(ps)
            if not waiting() and not self._deciding:
                break
            self._stage("awaiting_decision")
            self._outcomes()
            now = workflow.now()
            if now >= deadline and not self._deciding:
                break
            wake = min(deadline, next_reminder)
            timed_out = False
            try:
                await workflow.wait_condition(
                    lambda: bool(approved()) or (not waiting() and not self._deciding),
                    timeout=max(wake - now, timedelta(seconds=1)),
                )
            except TimeoutError:
                timed_out = True
            if timed_out and next_reminder <= workflow.now() < deadline:
                next_reminder = workflow.now() + input.reminder_interval
                for ps in waiting():
                    await self._exception_event(ps, "reminder")

        # Mark first, synchronously, so no decision can slip in while the expiry is recorded.
        expired = waiting()
        for ps in expired:
            ps.status = "expired"
        for ps in expired:
            await self._exception_event(ps, "expired")
        self._outcomes()

    def _start_act(self, ps: ProposalState) -> None:
        """Execute one proposal in a task of its own; the run waits for it before finishing."""
        proposal_id = ps.proposal.proposal_id
        self._acting.add(proposal_id)

        async def execute() -> None:
            try:
                await self._act(ps)
            finally:
                self._acting.discard(proposal_id)

        self._act_tasks.append(asyncio.create_task(execute()))

    def _raise_failed_acts(self) -> None:
        """An act that failed in a way no proposal status covers fails the run, as before."""
        for task in self._act_tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _reminder_interval(
        self, input: AgentRunInput, deadline: datetime, waiting: int
    ) -> timedelta:
        """The configured interval, stretched so the run records at most MAX_REMINDERS."""
        wait = deadline - workflow.now()
        rounds_allowed = max(MAX_REMINDERS // max(waiting, 1), 1)
        return max(input.reminder_interval, wait / rounds_allowed)

    async def _wait_beside_acts(self, input: AgentRunInput, deadline: datetime) -> None:
        def waiting() -> list[ProposalState]:
            return [p for p in self._state.proposals if p.status == "awaiting_decision"]

        def ready() -> list[ProposalState]:
            return [
                p
                for p in self._state.proposals
                if p.status == "approved" and p.proposal.proposal_id not in self._acting
            ]

        def act_failed() -> bool:
            return any(t.done() and t.exception() is not None for t in self._act_tasks)

        # An act re-judged at execution can send its proposal back to a human: while acts
        # run, the loop stays, so such a proposal is waited for like any other. Older runs
        # left the loop with acts still running (patch keeps their histories replaying).
        acts_may_send_back = workflow.patched("wait-for-acts-that-send-back")

        def busy() -> bool:
            # Approved and not yet started counts too: its act may also send it back.
            return bool(
                waiting() or self._deciding or (acts_may_send_back and (self._acting or ready()))
            )

        interval = self._reminder_interval(input, deadline, len(waiting()))
        next_reminder = workflow.now() + interval
        while busy():
            for ps in ready():
                self._start_act(ps)
            self._raise_failed_acts()
            if acts_may_send_back and not waiting():
                self._stage("acting")
            else:
                self._stage("awaiting_decision")
            self._outcomes()
            now = workflow.now()
            if now >= deadline and not self._deciding:
                break
            timed_out = False
            try:
                # Wake when an act finishes too (newer runs): it may have sent its proposal
                # back, and the stage should say so at once.
                acting = len(self._acting)

                def woken(acting: int = acting) -> bool:
                    return (
                        bool(ready())
                        or act_failed()
                        or not busy()
                        or (acts_may_send_back and len(self._acting) != acting)
                    )

                await workflow.wait_condition(
                    woken, timeout=max(min(deadline, next_reminder) - now, timedelta(seconds=1))
                )
            except TimeoutError:
                timed_out = True
            if timed_out and next_reminder <= workflow.now() < deadline:
                next_reminder = workflow.now() + interval
                await asyncio.gather(*(self._exception_event(p, "reminder") for p in waiting()))

        # Mark first, synchronously, so no decision can slip in while the expiry is recorded.
        expired = waiting()
        for ps in expired:
            ps.status = "expired"
        await asyncio.gather(*(self._exception_event(p, "expired") for p in expired))
        # Approvals that arrived last (the loop ended as they were recorded) execute too.
        for ps in ready():
            self._start_act(ps)
        if self._acting:
            self._stage("acting")
            self._outcomes()
        await workflow.wait_condition(lambda: not self._acting)
        self._raise_failed_acts()
        self._outcomes()

    async def _exception_event(self, ps: ProposalState, event: str) -> None:
        assert ps.exception_id is not None
        await _call(
            ExceptionActivities.record_exception_event,
            ExceptionEventInput(
                run=self._ref(),
                proposal_id=ps.proposal.proposal_id,
                exception_id=ps.exception_id,
                event=event,
            ),
        )
