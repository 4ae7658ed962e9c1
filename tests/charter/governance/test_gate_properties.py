"""Properties of the gate over generated constitutions and proposals (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import cel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.governance import gate
from charter.governance.facts import facts_for
from schemas import Constitution, Observation, Proposal
from tests.support.constitutions import from_raw, observation

CONDITIONS = [
    "true",
    "false",
    "amount > 1000.0",
    "amount <= 5000.0",
    'counterparty == "Bluebird"',
    "confidence >= 0.9",
    "has(vendor.verified) && vendor.verified",
    "vendor.verified",  # errors when the proposal has no vendor: must fail closed
    "invoice.amount - amount < 0.0",
]
ACTIONS = ["pay", "payroll"]

rules = st.lists(
    st.fixed_dictionaries(
        {
            "applies_to": st.lists(
                st.sampled_from([*ACTIONS, "*"]), min_size=1, max_size=2, unique=True
            ),
            "when": st.sampled_from(CONDITIONS),
            "effect": st.sampled_from(["allow", "escalate", "deny"]),
            "min_confidence": st.none() | st.floats(0.0, 1.0),
            "approvals_required": st.none() | st.integers(1, 3),
        }
    ),
    max_size=6,
)


@st.composite
def constitutions(draw: st.DrawFn) -> Constitution:
    raw_rules = []
    for n, r in enumerate(draw(rules)):
        rule: dict[str, Any] = {
            "id": f"r{n}",
            "title": f"rule {n}",
            "applies_to": r["applies_to"],
            "when": r["when"],
            "effect": r["effect"],
        }
        if r["effect"] == "allow" and r["min_confidence"] is not None:
            rule["min_confidence"] = r["min_confidence"]
        if r["effect"] == "escalate" and r["approvals_required"] is not None:
            rule["approvals_required"] = r["approvals_required"]
        raw_rules.append(rule)
    raw = {
        "defaults": {"min_confidence": draw(st.floats(0.0, 1.0))},
        "action_types": {a: {"reversible": draw(st.booleans())} for a in ACTIONS},
        "rules": raw_rules,
    }
    return from_raw(raw)


@st.composite
def proposals(draw: st.DrawFn, c: Constitution) -> Proposal:
    action = draw(st.sampled_from(ACTIONS))
    applicable = [r.id for r in c.document.rules if action in r.applies_to or "*" in r.applies_to]
    citations = draw(st.sampled_from([applicable, [], ["unknown-rule"], applicable[:1]]))
    return Proposal(
        proposal_id="p1",
        action=action,
        amount=draw(st.decimals(0, 20000, places=2)),
        counterparty=draw(st.sampled_from(["Bluebird", "Other", None])),
        reference=draw(st.sampled_from(["INV-1", None])),
        confidence=draw(st.floats(0.0, 1.0)),
        rationale="generated",
        citations=citations,
    )


cases = constitutions().flatmap(lambda c: st.tuples(st.just(c), proposals(c)))
OBS: Observation = observation()
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _deny_rule_matches(c: Constitution, p: Proposal) -> bool:
    """Evaluated independently of the gate: does any applicable deny rule hold?"""
    facts = facts_for(p, OBS)
    for rule in c.document.rules:
        if rule.effect != "deny" or not (p.action in rule.applies_to or "*" in rule.applies_to):
            continue
        try:
            if cel.compile(rule.when).execute(facts) is True:
                return True
        except Exception:
            continue
    return False


@PROFILE
@given(cases)
def test_irreversible_never_executes_autonomously(case: tuple[Constitution, Proposal]) -> None:
    c, p = case
    verdict = gate.evaluate(c, p, OBS)
    if not c.document.action_types[p.action].reversible:
        assert verdict.outcome != "execute"
        if verdict.outcome == "escalate":
            assert "irreversible" in verdict.causes


@PROFILE
@given(cases)
def test_deny_always_wins(case: tuple[Constitution, Proposal]) -> None:
    c, p = case
    verdict = gate.evaluate(c, p, OBS)
    assert (verdict.outcome == "deny") == _deny_rule_matches(c, p)


@PROFILE
@given(cases)
def test_gate_is_deterministic(case: tuple[Constitution, Proposal]) -> None:
    c, p = case
    first = gate.evaluate(c, p, OBS)
    # A fresh copy of every input, and an emptied compile cache, give the same verdict.
    gate._programs.clear()
    again = gate.evaluate(
        Constitution.model_validate_json(c.model_dump_json()),
        Proposal.model_validate_json(p.model_dump_json()),
        Observation.model_validate_json(OBS.model_dump_json()),
    )
    assert again == first


@PROFILE
@given(cases)
def test_execute_only_when_every_condition_holds(case: tuple[Constitution, Proposal]) -> None:
    c, p = case
    verdict = gate.evaluate(c, p, OBS)
    if verdict.outcome != "execute":
        return
    effects = {m.effect for m in verdict.matched}
    assert "allow" in effects and effects <= {"allow"}
    assert c.document.action_types[p.action].reversible
    assert verdict.threshold is not None and p.confidence >= verdict.threshold
    assert verdict.citations is not None and not verdict.citations.mismatch
    assert not verdict.errors or all(
        next(r for r in c.document.rules if r.id == e.rule_id).effect == "allow"
        for e in verdict.errors
    )
    assert verdict.approvals_required == 1


@PROFILE
@given(cases, st.decimals(0, 20000, places=2))
def test_quorum_is_the_max_over_matched_escalations(
    case: tuple[Constitution, Proposal], amount: Decimal
) -> None:
    c, p = case
    verdict = gate.evaluate(c, p.model_copy(update={"amount": amount}), OBS)
    if verdict.outcome == "escalate":
        expected = max(
            [m.approvals_required or 1 for m in verdict.matched if m.effect == "escalate"] + [1]
        )
        assert verdict.approvals_required == expected
    else:
        assert verdict.approvals_required == 1
