"""A tolerance is part of what an approver signs, and a statement without one is signed
exactly as before tolerances existed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from charter.audit.canonical import canonical_json, sha256_hex
from charter.crypto import statements
from charter.crypto.statements import StatementInvalid
from schemas import DecisionStatement

#: A statement as signed before tolerances existed: every field but `tolerance`.
BEFORE = {
    "tenant_id": "acme",
    "workflow_id": "charter/acme/ads/t-1",
    "run_id": "run-1",
    "proposal_id": "p1",
    "digest": "b" * 64,
    "outcome": "approve",
    "edit": None,
    "reason": "",
    "amendment": None,
    "member_id": "maya",
    "key_id": "mk-" + "1" * 16,
    "issued_at": datetime(2026, 12, 7, 1, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
    "valid_minutes": 5,
    "nonce": "c" * 32,
    "via": "member",
    "slack_user_id": None,
    "slack_team_id": None,
}


def test_no_tolerance_is_byte_identical_to_a_statement_before_tolerances() -> None:
    statement = DecisionStatement.model_validate(BEFORE)
    assert statement.tolerance is None
    old = canonical_json(BEFORE)
    text = statements.encode(statement)
    assert text.encode() == old and "tolerance" not in text
    assert sha256_hex(text.encode()) == sha256_hex(old)
    assert statements.parse(text) == statement


def test_a_tolerance_is_signed_and_cannot_be_widened(tmp_path: Path) -> None:
    key = statements.create_key("acme", "maya", tmp_path)
    public = statements.public_hex(key)
    statement = DecisionStatement.model_validate(
        {**BEFORE, "tolerance": {"campaign.daily_budget": "0.10"}}
    )
    text, signature = statements.sign(key, statement)
    verified = statements.verify(text, signature, public)
    assert verified.tolerance == {"campaign.daily_budget": Decimal("0.10")}
    widened = json.loads(text)
    widened["tolerance"]["campaign.daily_budget"] = "0.90"
    with pytest.raises(StatementInvalid, match="does not verify"):
        statements.verify(canonical_json(widened).decode(), signature, public)


@pytest.mark.parametrize(
    "tolerance",
    [{"campaign.daily_budget": "0"}, {"campaign.daily_budget": "1.5"}, {"accounts": "0.1"}],
)
def test_a_tolerance_names_a_record_fact_and_a_fraction(tolerance: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        DecisionStatement.model_validate({**BEFORE, "tolerance": tolerance})
