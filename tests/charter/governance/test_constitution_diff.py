"""What `charter constitution diff` reports between two versions, change by change."""

from __future__ import annotations

from charter.governance.constitution import load_yaml
from charter.governance.constitution_diff import Change, diff
from tests.support.constitutions import BASE

AMENDED = (
    BASE.replace("min_confidence: 0.80", "min_confidence: 0.85")
    .replace("run_payroll: {reversible: false}", "run_payroll: {reversible: true}")
    .replace(
        "  schedule_payment: {reversible: true}\n",
        "  refund: {reversible: true}\n  schedule_payment: {reversible: true}\n",
    )
    .replace("when: amount <= 5000.0", "when: amount <= 4000.0")
    .replace("    min_confidence: 0.5\n", "")
    + """  - id: deny-huge
    title: Never pay above $9,000
    applies_to: [schedule_payment]
    when: amount > 9000.0
    effect: deny
"""
)


def test_the_same_document_has_no_changes() -> None:
    assert diff(load_yaml(BASE), load_yaml(BASE)) == []


def test_every_change_in_document_order() -> None:
    assert diff(load_yaml(BASE), load_yaml(AMENDED)) == [
        Change(kind="changed", subject="defaults", fields={"min_confidence": (0.8, 0.85)}),
        Change(kind="added", subject="action type refund"),
        Change(
            kind="changed",
            subject="action type run_payroll",
            fields={"reversible": (False, True)},
        ),
        Change(
            kind="changed",
            subject="rule allow-small",
            fields={"when": ("amount <= 5000.0", "amount <= 4000.0")},
        ),
        Change(
            kind="changed",
            subject="rule allow-tiny-confident",
            fields={"min_confidence": (0.5, None)},
        ),
        Change(kind="added", subject="rule deny-huge"),
    ]


def test_what_the_older_version_no_longer_has_is_removed() -> None:
    removed = [c for c in diff(load_yaml(AMENDED), load_yaml(BASE)) if c.kind == "removed"]
    assert removed == [
        Change(kind="removed", subject="action type refund"),
        Change(kind="removed", subject="rule deny-huge"),
    ]
