"""The gate, table-driven: every effect, every precedence, every escalation cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from charter.governance import gate
from schemas import Verdict
from tests.support.constitutions import BASE, OBSERVED_AT, constitution, observation, proposal

EXTRA = """
  - id: escalate-weekend
    title: Payroll review
    applies_to: [run_payroll]
    when: "true"
    effect: escalate
  - id: wildcard-deny-huge
    title: Nothing above a million, whatever it is
    applies_to: ["*"]
    when: amount > 1000000.0
    effect: deny
  - id: deny-broken
    title: A deny rule whose condition fails on these facts
    applies_to: [schedule_payment]
    when: reference == "BROKEN" && invoice.no_such_field > 1.0
    effect: deny
"""


@dataclass
class Case:
    name: str
    proposal: dict[str, Any]
    outcome: str
    causes: list[str] = field(default_factory=list)
    matched: list[str] | None = None
    approvals_required: int = 1
    threshold: float | None = None


CASES = [
    Case("allowed, confident, reversible", {}, "execute", [], ["allow-small"], threshold=0.8),
    Case(
        "a lower rule threshold applies when its allow rule matches",
        {"amount": Decimal("50.00"), "confidence": 0.6},
        "execute",
        [],
        ["allow-small", "allow-tiny-confident"],
        threshold=0.5,
    ),
    Case(
        "below the default threshold escalates",
        {"confidence": 0.79},
        "escalate",
        ["below_confidence"],
        threshold=0.8,
    ),
    Case(
        "no allow rule: outside bounds",
        {"amount": Decimal("6000.00")},
        "escalate",
        ["escalation_rule", "outside_bounds"],
        ["escalate-large"],
        approvals_required=2,
    ),
    Case(
        "escalate beats allow, and the rule's quorum applies",
        {"amount": Decimal("4000.00")},
        "escalate",
        ["escalation_rule"],
        ["allow-small", "escalate-large"],
        approvals_required=2,
    ),
    Case(
        "deny beats allow",
        {"counterparty": "Blocked Ltd"},
        "deny",
        [],
        ["deny-blocked", "allow-small"],
    ),
    Case(
        "deny beats escalate",
        {"counterparty": "Blocked Ltd", "amount": Decimal("4000.00")},
        "deny",
        [],
        ["deny-blocked", "allow-small", "escalate-large"],
    ),
    Case(
        "a wildcard deny applies to every action type",
        {"action": "run_payroll", "amount": Decimal("2000000.00")},
        "deny",
        [],
        ["escalate-weekend", "wildcard-deny-huge"],
    ),
    Case(
        "irreversible always escalates, even allowed and confident",
        {"action": "run_payroll", "amount": Decimal("10.00"), "confidence": 1.0},
        "escalate",
        ["escalation_rule", "irreversible"],
        ["allow-small", "escalate-weekend"],
    ),
    Case(
        "an undeclared action type is denied",
        {"action": "wire_money", "citations": []},
        "deny",
        ["unknown_action"],
        [],
    ),
    Case(
        "a deny rule that cannot be evaluated fails closed",
        {"reference": "BROKEN"},
        "escalate",
        ["rule_error"],
        ["allow-small"],
    ),
    Case(
        "citing an unknown rule blocks autonomy",
        {"citations": ["allow-small", "allow-everything"]},
        "escalate",
        ["citation_mismatch"],
        ["allow-small"],
    ),
    Case(
        "citing one of several allow rules that matched is enough",
        {"amount": Decimal("50.00"), "citations": ["allow-tiny-confident"]},
        "execute",
        [],
        ["allow-small", "allow-tiny-confident"],
    ),
    Case(
        "not citing the decisive rule blocks autonomy",
        {"citations": ["deny-blocked"]},
        "escalate",
        ["citation_mismatch"],
        ["allow-small"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gate_table(case: Case) -> None:
    c = constitution(BASE + EXTRA)
    p = proposal(c, **case.proposal)
    verdict = gate.evaluate(c, p, observation())
    assert verdict.outcome == case.outcome, verdict.explanation
    assert verdict.causes == case.causes
    if case.matched is not None:
        assert [m.rule_id for m in verdict.matched] == case.matched
    assert verdict.approvals_required == case.approvals_required
    if case.threshold is not None:
        assert verdict.threshold == case.threshold
    assert verdict.constitution_version == 1 and verdict.constitution_hash == c.content_hash


def test_verdict_lists_why_each_rule_matched() -> None:
    c = constitution()
    verdict = gate.evaluate(c, proposal(c, amount=Decimal("4000.00")), observation())
    why = {m.rule_id: m.why for m in verdict.matched}
    assert why["escalate-large"] == "amount=4000.0"
    assert verdict.approver_roles == [["owner"]]
    assert verdict.evaluated == [
        "deny-blocked",
        "allow-small",
        "allow-tiny-confident",
        "escalate-large",
    ]
    assert "Needs 2 distinct approvers" in verdict.explanation


def test_why_shows_observed_fields() -> None:
    c = constitution(
        BASE.replace("when: amount <= 5000.0", "when: amount <= 5000.0 && !vendor.verified")
    )
    verdict = gate.evaluate(c, proposal(c), observation())
    assert {m.rule_id: m.why for m in verdict.matched}["allow-small"] == (
        "amount=1000.0, vendor.verified=false"
    )


def test_expired_rule_no_longer_applies() -> None:
    expiry = (OBSERVED_AT + timedelta(hours=1)).isoformat()
    text = BASE.replace(
        "    when: amount <= 5000.0\n", f"    when: amount <= 5000.0\n    expires_at: '{expiry}'\n"
    )
    c = constitution(text)
    before = gate.evaluate(c, proposal(c), observation())
    assert before.outcome == "execute" and before.expired == []
    later = observation(observed_at=OBSERVED_AT + timedelta(hours=2))
    after = gate.evaluate(c, proposal(c), later)
    assert after.outcome == "escalate" and after.causes == ["outside_bounds"]
    assert after.expired == ["allow-small"]
    # Time is an input, never a clock read: the same inputs give the same verdict.
    assert gate.evaluate(c, proposal(c), later, now=OBSERVED_AT) == before


def test_citation_check_is_recorded_even_when_denied() -> None:
    c = constitution()
    verdict: Verdict = gate.evaluate(
        c, proposal(c, counterparty="Blocked Ltd", citations=["nope"]), observation()
    )
    assert verdict.outcome == "deny"
    assert verdict.citations is not None
    assert verdict.citations.unknown == ["nope"] and verdict.citations.missing == ["deny-blocked"]
