"""Invalid constitutions are rejected with a message naming the rule and what is wrong."""

from __future__ import annotations

import pytest

from charter.demo.seed import constitution_source
from charter.governance.constitution import ConstitutionError, load_yaml
from tests.support.constitutions import BASE


def _problems(text: str) -> list[str]:
    with pytest.raises(ConstitutionError) as exc:
        load_yaml(text)
    assert str(exc.value).startswith("invalid constitution:")
    return exc.value.problems


def _with_rule(rule: str) -> str:
    return BASE + rule


@pytest.mark.parametrize("tenant", ["acme", "initech"])
def test_demo_constitutions_load(tenant: str) -> None:
    assert load_yaml(constitution_source(tenant)).rules


CASES = {
    "unknown field in a rule": (
        _with_rule(
            "  - id: typo\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'true'\n    effect: allow\n    min_confidnce: 0.5\n"
        ),
        "rule 'typo': min_confidnce: unknown field",
    ),
    "unknown top-level field": (BASE + "owner: maya\n", "owner: unknown field"),
    "unknown action type": (
        _with_rule(
            "  - id: wires\n    title: t\n    applies_to: [wire_money]\n"
            "    when: 'true'\n    effect: allow\n"
        ),
        "rule 'wires': applies_to names unknown action type 'wire_money'",
    ),
    "CEL that does not compile": (
        _with_rule(
            "  - id: broken\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'amount >'\n    effect: deny\n"
        ),
        "rule 'broken': condition does not compile",
    ),
    "CEL with an unknown field": (
        _with_rule(
            "  - id: misspelt\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'vendr.verified'\n    effect: allow\n"
        ),
        "rule 'misspelt': condition references unknown field(s) vendr",
    ),
    "unknown field in a branch a probe would never reach": (
        _with_rule(
            "  - id: hidden\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'false && ammount > 1.0'\n    effect: deny\n"
        ),
        "rule 'hidden': condition references unknown field(s) ammount",
    ),
    "CEL with an unknown function": (
        _with_rule(
            "  - id: func\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'lookup(counterparty)'\n    effect: deny\n"
        ),
        "rule 'func': condition calls unknown function(s) lookup",
    ),
    "a condition that is not a boolean": (
        _with_rule(
            "  - id: number\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'amount + 1.0'\n    effect: deny\n"
        ),
        "rule 'number': condition must be a boolean, got float",
    ),
    "duplicate ids": (
        _with_rule(
            "  - id: allow-small\n    title: again\n    applies_to: [schedule_payment]\n"
            "    when: 'true'\n    effect: allow\n"
        ),
        "rule 'allow-small': duplicate id",
    ),
    "a quorum on an allow rule": (
        _with_rule(
            "  - id: q\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'true'\n    effect: allow\n    approvals_required: 2\n"
        ),
        "rule 'q': approvals_required only applies to escalate rules",
    ),
    "an expiry without a timezone": (
        _with_rule(
            "  - id: naive\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'true'\n    effect: allow\n    expires_at: '2027-01-01T00:00:00'\n"
        ),
        "rule 'naive': expires_at needs a timezone",
    ),
    "an invalid effect": (
        _with_rule(
            "  - id: eff\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'true'\n    effect: maybe\n"
        ),
        "rule 'eff': effect: Input should be 'allow', 'escalate' or 'deny'",
    ),
    "not YAML": ("rules: [", "not valid YAML"),
    "not a mapping": ("- a\n- b\n", "the document must be a mapping"),
}


@pytest.mark.parametrize("text,expected", CASES.values(), ids=list(CASES))
def test_invalid_constitution_is_rejected(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    text = _with_rule(
        "  - id: one\n    title: t\n    applies_to: [nope]\n    when: 'bogus'\n    effect: allow\n"
        "  - id: one\n    title: t\n    applies_to: [schedule_payment]\n"
        "    when: 'true'\n    effect: deny\n"
    )
    problems = _problems(text)
    assert len(problems) == 3, problems


def test_comprehension_variables_are_not_unknown_fields() -> None:
    doc = load_yaml(
        _with_rule(
            "  - id: cash\n    title: t\n    applies_to: [schedule_payment]\n"
            "    when: 'accounts.exists(a, a.balance > amount)'\n    effect: allow\n"
        )
    )
    assert doc.rules[-1].id == "cash"


def test_hostile_yaml_tags_are_refused() -> None:
    problems = _problems("!!python/object/apply:os.system ['echo hacked']\n")
    assert "not valid YAML" in problems[0]
