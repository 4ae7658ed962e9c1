"""The rule book for decisions, table-driven: every refusal, quorum counting, roles,
self-approval spellings and edits. Pure: no Temporal, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest

from charter.governance import approvals
from charter.governance.approvals import Ballot, Case
from schemas import Decision, ProposalEdit, Verdict
from schemas.errors import NON_RETRYABLE, ErrorType, catalogue
from tests.support.paths import REPO


def verdict(outcome: str = "escalate", *, required: int = 1, roles: Any = (), **kw: Any) -> Verdict:
    return Verdict(
        proposal_id="p1",
        outcome=outcome,  # type: ignore[arg-type]
        constitution_version=1,
        constitution_hash="0" * 64,
        evaluated=[],
        matched=[],
        confidence=0.9,
        explanation=kw.pop("explanation", "because"),
        approvals_required=required,
        approver_roles=[list(r) for r in roles],
        **kw,
    )


BASE = Case(
    tenant_id="acme",
    proposal_id="p1",
    status=approvals.AWAITING,
    verdict=verdict(),
    approvers=frozenset({"maya", "sam", "ola", "finn"}),
    roles={"maya": ["approver"], "sam": ["approver"], "ola": ["owner"], "finn": ["approver"]},
    requested_by="sam",
)


def ask(approver: str = "maya", outcome: str = "approve", edit: str | None = None) -> Decision:
    return Decision(
        proposal_id="p1",
        approver=approver,
        outcome=outcome,  # type: ignore[arg-type]
        edit=ProposalEdit(amount=Decimal(edit)) if edit is not None else None,
    )


@dataclass
class Row:
    name: str
    case: dict[str, Any] = field(default_factory=dict)
    decision: Decision = field(default_factory=ask)
    regated: Verdict | None = None
    refusal: ErrorType | None = None
    message: str = ""


ROWS = [
    Row("an approver approves", refusal=None),
    Row("an approver rejects", decision=ask(outcome="reject")),
    Row(
        "already approved",
        case={"status": "approved"},
        refusal=ErrorType.NOT_AWAITING_DECISION,
        message="proposal p1 is not awaiting a decision (status: approved)",
    ),
    Row(
        "a decision in flight",
        case={"in_flight": True},
        refusal=ErrorType.NOT_AWAITING_DECISION,
        message="(status: awaiting_decision)",
    ),
    Row(
        "not an approver",
        decision=ask("eve"),
        refusal=ErrorType.UNAUTHORISED_APPROVER,
        message="'eve' is not an authorised approver for tenant 'acme'",
    ),
    Row(
        "the requester approves",
        decision=ask("sam"),
        refusal=ErrorType.SELF_APPROVAL,
        message="'sam' requested this run and cannot approve its proposals",
    ),
    Row("the requester rejects", decision=ask("sam", "reject"), refusal=ErrorType.SELF_APPROVAL),
    Row(
        "requester spelt Sam",
        case={"requested_by": "Sam"},
        decision=ask("sam"),
        refusal=ErrorType.SELF_APPROVAL,
    ),
    Row(
        "requester spelt ' sam '",
        case={"requested_by": " sam "},
        decision=ask("sam"),
        refusal=ErrorType.SELF_APPROVAL,
    ),
    Row(
        "requester spelt SAM",
        case={"requested_by": "SAM"},
        decision=ask("sam"),
        refusal=ErrorType.SELF_APPROVAL,
    ),
    Row("no requester", case={"requested_by": None}, decision=ask("sam")),
    Row(
        "requester not known here",
        case={"requested_by": None, "approvers": None},
        decision=ask("eve"),
    ),
    Row(
        "a second decision by one member",
        case={"decisions": [Ballot("maya", "approve")], "verdict": verdict(required=2)},
        refusal=ErrorType.DUPLICATE_APPROVAL,
        message="'maya' has already decided on proposal p1",
    ),
    Row(
        "a second approver toward a quorum",
        case={"decisions": [Ballot("finn", "approve")], "verdict": verdict(required=2)},
    ),
    Row(
        "lacks the role a rule names",
        case={"verdict": verdict(roles=[["owner"]])},
        refusal=ErrorType.UNAUTHORISED_APPROVER,
        message="'maya' lacks a role this exception needs (owner)",
    ),
    Row(
        "holds the role a rule names",
        case={"verdict": verdict(roles=[["owner"]])},
        decision=ask("ola"),
    ),
    Row(
        "roles of every rule: one of each list",
        case={"verdict": verdict(roles=[["owner", "cfo"], ["approver"]])},
        decision=ask("ola"),
        refusal=ErrorType.UNAUTHORISED_APPROVER,
        message="(owner/cfo and approver)",
    ),
    Row(
        "the edited verdict's roles count too",
        case={"approved_verdict": verdict(roles=[["owner"]])},
        refusal=ErrorType.UNAUTHORISED_APPROVER,
    ),
    Row(
        "roles not known (runs before roles): not checked",
        case={"verdict": verdict(roles=[["owner"]]), "roles": {}},
    ),
    Row("an approval with an edit", decision=ask(edit="10.00"), regated=verdict()),
    Row(
        "a reject with an edit",
        decision=ask(outcome="reject", edit="10.00"),
        regated=verdict(),
        refusal=ErrorType.INVALID_DECISION,
        message="invalid decision: edit: only an approval can edit the parameters",
    ),
    Row(
        "an edit after an approval",
        case={"decisions": [Ballot("finn", "approve")], "verdict": verdict(required=2)},
        decision=ask(edit="10.00"),
        regated=verdict(),
        refusal=ErrorType.EDIT_AFTER_APPROVAL,
        message="proposal p1 already has approvals of its current parameters",
    ),
    Row(
        "an edit after a reject is still the first approval",
        case={"decisions": [Ballot("finn", "reject")]},
        decision=ask(edit="10.00"),
        regated=verdict(),
    ),
    Row(
        "an edit the gate denies",
        decision=ask(edit="10.00"),
        regated=verdict("deny", explanation="too much"),
        refusal=ErrorType.EDIT_DENIED,
        message="the edited proposal is denied by the gate: too much",
    ),
    Row(
        "an edit with no verdict on it",
        decision=ask(edit="10.00"),
        refusal=ErrorType.INVALID_DECISION,
        message="an edit needs an approval and the gate's verdict",
    ),
    Row(
        "approving parameters whose edit was denied",
        case={"approved_verdict": verdict("deny")},
        refusal=ErrorType.EDIT_DENIED,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_rule_book(row: Row) -> None:
    regated = row.regated
    refusal = approvals.judge(replace(BASE, **row.case), row.decision, lambda: regated)
    if row.refusal is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.type == row.refusal
        assert row.message in refusal.message


def test_every_decision_refusal_is_in_the_table() -> None:
    decided = {r.refusal for r in ROWS if r.refusal is not None}
    assert decided == {
        ErrorType.NOT_AWAITING_DECISION,
        ErrorType.UNAUTHORISED_APPROVER,
        ErrorType.SELF_APPROVAL,
        ErrorType.DUPLICATE_APPROVAL,
        ErrorType.INVALID_DECISION,
        ErrorType.EDIT_AFTER_APPROVAL,
        ErrorType.EDIT_DENIED,
    }


def test_the_gate_is_asked_only_when_every_other_rule_holds() -> None:
    asked: list[int] = []

    def regate() -> Verdict:
        asked.append(1)
        return verdict()

    assert approvals.judge(BASE, ask("eve", edit="1.00"), regate) is not None
    assert asked == []
    assert approvals.judge(BASE, ask(edit="1.00"), regate) is None
    assert asked == [1]


def test_quorum_counts_distinct_approvers_of_the_strictest_verdict() -> None:
    two, three = verdict(required=2), verdict(required=3)
    assert approvals.required(None) == 1
    assert approvals.required(two, three) == 3
    same_twice = [Ballot("maya", "approve"), Ballot("maya", "approve")]
    assert not approvals.quorum_met(same_twice, two)
    assert not approvals.quorum_met([Ballot("maya", "approve"), Ballot("finn", "reject")], two)
    assert approvals.quorum_met([Ballot("maya", "approve"), Ballot("finn", "approve")], two)
    assert not approvals.quorum_met(
        [Ballot("maya", "approve"), Ballot("finn", "approve")], two, three
    )
    assert approvals.approvers(
        [Ballot("b", "approve"), Ballot("a", "approve"), Ballot("b", "approve")]
    ) == ["b", "a"]


def test_the_catalogue_describes_every_type_once() -> None:
    exported = catalogue()["errors"]
    assert [e["type"] for e in exported] == [str(t) for t in ErrorType]
    assert all(e["when"] and isinstance(e["retryable"], bool) for e in exported)
    assert "NotAuthorised" in NON_RETRYABLE and "ReasonerUnavailable" not in NON_RETRYABLE


ROOT = REPO
#: `type="Something"` or `type != "Something"`: an error type written as a string literal.
LITERAL = re.compile(r"""\btype\s*(?:=|==|!=)\s*["'][A-Z][A-Za-z]+["']""")


def test_no_error_type_is_a_string_literal_outside_the_catalogue() -> None:
    offenders = []
    for package in ("schemas", "charter", "activities", "workflows", "charter_cli"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "schemas" / "errors.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                if LITERAL.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    for entry in ("worker.py", "starter.py"):
        text = (ROOT / entry).read_text()
        offenders += [f"{entry}: {m.group(0)}" for m in LITERAL.finditer(text)]
    assert offenders == [], "use schemas.errors.ErrorType:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [(None, False), ([], False), (["viewer"], False), (["approver"], True), (["owner"], True)],
)
def test_who_may_decide_at_all(roles: list[str] | None, expected: bool) -> None:
    assert approvals.is_approver(roles) is expected


@pytest.mark.parametrize(
    ("outcome", "count", "required", "status"),
    [
        ("reject", 5, 1, "rejected"),
        ("approve", 1, 1, "approved"),
        ("approve", 1, 2, "awaiting_decision"),
        ("approve", 2, 2, "approved"),
    ],
)
def test_status_after_a_decision(outcome: str, count: int, required: int, status: str) -> None:
    assert approvals.status_after(outcome, count, required) == status
