"""The authorisation an action executes on, as a typed model whose JSON is the records'.

The write intent (`action_intent`) and the action row have held an authorisation as plain
JSON since the first version; the model must write exactly that JSON, so chains already
written verify and ledgers rebuilt from them compare, and read it back unchanged.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from charter.audit.canonical import canonical_json
from schemas import (
    ApprovalAuthorisation,
    CitationCheck,
    GateAuthorisation,
    LimitBreach,
    RuleMatch,
    Verdict,
    parse_authorisation,
)


def _verdict(outcome: str = "escalate", amount: str = "2300.00") -> Verdict:
    return Verdict.model_validate(
        {
            "proposal_id": "p1",
            "outcome": outcome,
            "constitution_version": 3,
            "constitution_hash": "ab" * 32,
            "evaluated": ["pay-verified", "big-payments"],
            "matched": [
                RuleMatch(
                    rule_id="big-payments",
                    title="Large payments need a human",
                    effect="escalate",
                    condition="amount > 2000.0",
                    approvals_required=2,
                    approvers=["finance"],
                    why="amount=2300.0",
                )
            ],
            "causes": ["escalation_rule"],
            "threshold": 0.8,
            "confidence": 0.93,
            "explanation": "escalated by big-payments",
            "approvals_required": 2,
            "approver_roles": [["finance"]],
            "citations": CitationCheck(cited=["big-payments"]),
            "limits": [
                LimitBreach(
                    limit_id="monthly",
                    scope="total",
                    window="30d",
                    limit=Decimal("10000.00"),
                    spent=Decimal("9000.00"),
                    amount=Decimal(amount),
                    currency="USD",
                    on_exceed="escalate",
                )
            ],
        }
    )


def _as_written(value: object) -> str:
    return json.dumps(value)


def test_a_gate_authorisation_writes_the_json_the_records_hold() -> None:
    verdict = _verdict("execute")
    before = {"kind": "gate", "verdict": verdict.model_dump(mode="json")}
    model = GateAuthorisation(verdict=verdict)
    assert _as_written(model.model_dump(mode="json")) == _as_written(before)
    assert canonical_json(model.model_dump(mode="json")) == canonical_json(before)
    assert model.judged == verdict


@pytest.mark.parametrize("edited", [False, True])
def test_an_approval_writes_the_json_the_records_hold(edited: bool) -> None:
    verdict = _verdict()
    edited_verdict = _verdict(amount="2100.00") if edited else None
    before = {
        "kind": "approval",
        "exception_id": "exc-charter/acme/payables/t1/p1",
        "approvers": ["maya", "sam"],
        "approvals_required": 2,
        "verdict": verdict.model_dump(mode="json"),
        "edited_verdict": edited_verdict.model_dump(mode="json") if edited_verdict else None,
    }
    model = ApprovalAuthorisation(
        exception_id="exc-charter/acme/payables/t1/p1",
        approvers=["maya", "sam"],
        approvals_required=2,
        verdict=verdict,
        edited_verdict=edited_verdict,
    )
    assert _as_written(model.model_dump(mode="json")) == _as_written(before)
    assert canonical_json(model.model_dump(mode="json")) == canonical_json(before)
    assert model.judged == (edited_verdict or verdict)


@pytest.mark.parametrize("kind", ["gate", "approval"])
def test_a_stored_authorisation_reads_back_to_the_same_json(kind: str) -> None:
    verdict = _verdict("execute" if kind == "gate" else "escalate")
    written = (
        GateAuthorisation(verdict=verdict)
        if kind == "gate"
        else ApprovalAuthorisation(
            exception_id="e1", approvers=["maya"], approvals_required=1, verdict=verdict
        )
    )
    stored = json.loads(json.dumps(written.model_dump(mode="json")))
    parsed = parse_authorisation(stored)
    assert type(parsed) is type(written)
    assert _as_written(parsed.model_dump(mode="json")) == _as_written(stored)


def test_a_stored_authorisation_of_no_known_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_authorisation({"kind": "claim", "verdict": _verdict().model_dump(mode="json")})
