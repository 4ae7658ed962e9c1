"""Backtest: replay recorded proposals from the audit trail through a candidate constitution.

The audit trail holds, per run, the full observation (`observed`) and every proposal with
the gate's verdict (`gate_verdict`). Re-running the pure gate on them with the candidate
shows, decision by decision, what the candidate would have changed, before anyone adopts
it. The gate is evaluated at the instant each observation was taken, as it was live.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from charter.audit.chain import AuditEntry
from charter.governance import gate, spend
from schemas import Constitution, Observation, Proposal, SpendSnapshot, Verdict
from schemas.backtest import BEHAVIOUR, BacktestCase, BacktestReport

#: Audit kinds that say what became of an escalated proposal.
_HUMAN = {"exception_expired": "expired"}


def _applicable(candidate: Constitution, action: str) -> list[str]:
    rules = candidate.document.rules
    return [r.id for r in rules if action in r.applies_to or "*" in r.applies_to]


@dataclass
class _Trail:
    """What the audit trail holds for a backtest: each run's observation, each recorded
    verdict with its proposal, and what humans decided (or let expire)."""

    observations: dict[tuple[str | None, str | None], Observation] = field(default_factory=dict)
    recorded: list[tuple[AuditEntry, Proposal, Verdict]] = field(default_factory=list)
    human: dict[tuple[str | None, str], str] = field(default_factory=dict)


def backtest(
    candidate: Constitution, entries: Iterable[AuditEntry], *, since: datetime | None = None
) -> BacktestReport:
    trail = _read(entries, since)
    cases: list[BacktestCase] = []
    skipped = 0
    # What the candidate would have let go out, in history order: the spend its limits and
    # `spend.*` facts see at each decision (its own autonomous executions, and what humans
    # approved), not what the recorded version let go out.
    spent: list[dict[str, Any]] = []
    for entry, proposal, verdict in trail.recorded:
        observation = trail.observations.get((entry.workflow_id, entry.run_id))
        if observation is None:
            skipped += 1
            continue
        human = trail.human.get((entry.workflow_id, proposal.proposal_id))
        cases.append(_replay(candidate, entry, proposal, verdict, observation, human, spent))
    return BacktestReport(
        tenant_id=candidate.tenant_id,
        candidate_hash=candidate.content_hash,
        since=since.isoformat() if since else None,
        cases=cases,
        skipped=skipped,
    )


def _read(entries: Iterable[AuditEntry], since: datetime | None) -> _Trail:
    trail = _Trail()
    for entry in entries:
        if entry.kind == "observed":
            try:
                trail.observations[(entry.workflow_id, entry.run_id)] = Observation.model_validate(
                    entry.snapshot
                )
            except ValidationError:
                continue  # an entry from an older schema: its proposals are skipped
        elif entry.kind == "gate_verdict":
            if since is not None and datetime.fromisoformat(entry.occurred_at) < since:
                continue
            trail.recorded.append(
                (
                    entry,
                    Proposal.model_validate(entry.snapshot["proposal"]),
                    Verdict.model_validate(entry.snapshot["verdict"]),
                )
            )
        else:
            _read_human(trail, entry)
    return trail


def _read_human(trail: _Trail, entry: AuditEntry) -> None:
    """A decision on a proposal, or its expiry."""
    if entry.kind == "decision":
        pid = entry.snapshot.get("proposal", {}).get("proposal_id")
        status = entry.snapshot.get("status") or (
            "approved" if entry.snapshot["decision"]["outcome"] == "approve" else "rejected"
        )
        if pid:
            trail.human[(entry.workflow_id, pid)] = status
    elif entry.kind in _HUMAN and entry.snapshot.get("proposal_id"):
        trail.human[(entry.workflow_id, entry.snapshot["proposal_id"])] = _HUMAN[entry.kind]


def _replay(
    candidate: Constitution,
    entry: AuditEntry,
    proposal: Proposal,
    verdict: Verdict,
    observation: Observation,
    human: str | None,
    spent: list[dict[str, Any]],
) -> BacktestCase:
    """One recorded proposal judged by the candidate, with the spend it would have let go
    out so far; what it lets go out now is added to `spent`."""
    at = datetime.fromisoformat(entry.occurred_at)
    observation = observation.model_copy(
        update={"spend": SpendSnapshot(as_of=at, windows=spend.totals(spent, at))}
    )
    # Citations belong to the reasoner's run under the version it read, not to the law:
    # assume a diligent reasoner that cites every candidate rule for the action type.
    cited = proposal.model_copy(update={"citations": _applicable(candidate, proposal.action)})
    after = gate.evaluate(candidate, cited, observation)
    goes_out = after.outcome == "execute" or (after.outcome == "escalate" and human == "approved")
    if goes_out and proposal.action in spend.spending_actions(candidate.document):
        _spend(spent, proposal, observation, at, autonomous=after.outcome == "execute")
    return BacktestCase(
        workflow_id=entry.workflow_id or "",
        proposal_id=proposal.proposal_id,
        occurred_at=entry.occurred_at,
        action=proposal.action,
        counterparty=proposal.counterparty,
        reference=proposal.reference,
        amount=proposal.amount,
        recorded_version=verdict.constitution_version,
        recorded=BEHAVIOUR[verdict.outcome],
        candidate=BEHAVIOUR[after.outcome],
        recorded_causes=verdict.causes,
        candidate_causes=after.causes,
        candidate_rules=[m.rule_id for m in after.matched],
        human=human,
    )


def _spend(
    spent: list[dict[str, Any]],
    proposal: Proposal,
    observation: Observation,
    at: datetime,
    *,
    autonomous: bool,
) -> None:
    """A spending proposal the candidate lets go out, as the spend ledger would hold it."""
    if proposal.amount is None:
        return
    invoice = next((i for i in observation.invoices if i.invoice_id == proposal.reference), None)
    spent.append(
        {
            "at": at,
            "amount": proposal.amount,
            "action": proposal.action,
            "payee": spend.payee_of(proposal, invoice),
            "agent": observation.agent,
            "autonomous": autonomous,
        }
    )
