"""The gate hands CEL one context per proposal holding only the facts its live rules read.
That must judge exactly as evaluating every condition on the whole facts dict would."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import cel
import pytest

from charter.demo.seed import constitution_source
from charter.governance import gate
from charter.governance.facts import facts_for
from tests.governance.fixtures import constitution, observation, proposal

ACME = constitution(constitution_source("acme"))

# A payment rule reading a fact only payroll rules read otherwise, and one reading a field
# the facts lack: the first must still see its fact, the second must still fail closed.
EXTRA = (
    constitution_source("acme")
    + """
  - id: deny-low-cash
    title: Never pay when the accounts hold less than the payment
    applies_to: [schedule_payment]
    when: total_cash < amount
    effect: deny
  - id: escalate-missing-field
    title: Reads a field the invoice facts do not have
    applies_to: [schedule_payment]
    when: invoice.no_such_field > 1.0
    effect: escalate
"""
)


def _whole_dict(c: Any, p: Any, seen: Any) -> tuple[list[str], list[str]]:
    """Matched and failed rule ids, each condition executed on the full facts dict."""
    facts = facts_for(p, seen, [])
    matched, failed = [], []
    for rule in c.document.rules:
        if p.action not in rule.applies_to and "*" not in rule.applies_to:
            continue
        try:
            result = cel.compile(rule.when).execute(facts)
        except Exception:
            failed.append(rule.id)
            continue
        if result is True:
            matched.append(rule.id)
        elif result is not False:
            failed.append(rule.id)
    return matched, failed


@pytest.mark.parametrize("text", [constitution_source("acme"), EXTRA], ids=["acme", "extra"])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"amount": Decimal("2300.00"), "counterparty": "Bluebird"},
        {"amount": Decimal("12000.00")},
        {"reference": "INV-404"},
        {"amount": Decimal("500000.00"), "counterparty": "Somebody else"},
    ],
)
def test_narrowed_context_judges_like_the_whole_facts(text: str, fields: dict[str, Any]) -> None:
    c = constitution(text)
    seen = observation()
    p = proposal(c, **fields)
    verdict = gate.evaluate(c, p, seen)
    matched, failed = _whole_dict(c, p, seen)
    assert [m.rule_id for m in verdict.matched] == matched
    assert [e.rule_id for e in verdict.errors] == failed
    if text == EXTRA:
        assert "escalate-missing-field" in failed  # an unreadable fact fails closed
        assert verdict.outcome != "execute"


@pytest.mark.parametrize(
    "value",
    [True, False, 0, -5, 10**30, 1.5, 1e16, 1e-7, -0.0, float("inf"), 'a"b', None, [1, 2.5]],
)
def test_why_shows_values_exactly_as_json_does(value: Any) -> None:
    import json

    assert gate._shown(value) == json.dumps(value)
