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
from tests.support.constitutions import constitution, observation, proposal

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

# Rules that read the invoice as a whole (its size, a macro over its keys, an index) beside
# rules that only select its fields: the context must not cut the map down for any of them.
WHOLE = (
    constitution_source("acme")
    + """
  - id: escalate-big-record
    title: Reads the size of the whole invoice map
    applies_to: [schedule_payment]
    when: size(invoice) > 5
    effect: escalate
  - id: escalate-has-memo-key
    title: A macro over the invoice's keys
    applies_to: [schedule_payment]
    when: invoice.exists(k, k == "memo")
    effect: escalate
  - id: escalate-indexed-memo
    title: An index instead of a field selection
    applies_to: [schedule_payment]
    when: invoice["status"] == "open"
    effect: escalate
  - id: escalate-vendor-seen
    title: The vendor map compared as a whole
    applies_to: [schedule_payment]
    when: vendor != {}
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


@pytest.mark.parametrize(
    "text", [constitution_source("acme"), EXTRA, WHOLE], ids=["acme", "extra", "whole"]
)
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
    if text == WHOLE and fields.get("reference") != "INV-404":
        # Each of these needs keys no other rule selects (or the whole map): all match.
        assert {"escalate-big-record", "escalate-has-memo-key", "escalate-indexed-memo"} <= set(
            matched
        )


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        0,
        -5,
        10**30,
        1.5,
        1e16,
        1e-7,
        -0.0,
        float("inf"),
        'a"b',
        "é\u2028\\\n\x01",
        "\ud800",
        "",
        None,
        [1, 2.5],
        ["INV-1", "INV-2"],
    ],
)
def test_why_shows_values_exactly_as_json_does(value: Any) -> None:
    import json

    assert gate._shown(value) == json.dumps(value)
