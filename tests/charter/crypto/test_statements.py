"""Signed statements and inert text, without a database: what verifies and what does not."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from charter.crypto import statements
from charter.crypto.statements import NoLocalKey, StatementInvalid
from charter.presentation.inert import inert
from schemas import DecisionStatement


def _statement(**change: object) -> DecisionStatement:
    values: dict[str, object] = {
        "tenant_id": "acme",
        "workflow_id": "charter/acme/payables/t-1",
        "run_id": "run-1",
        "proposal_id": "p1",
        "digest": "a" * 64,
        "outcome": "approve",
        "member_id": "maya",
        "key_id": "mk-" + "0" * 16,
        "issued_at": datetime.now(UTC),
        "valid_minutes": 5,
        "nonce": statements.nonce(),
        **change,
    }
    return DecisionStatement.model_validate(values)


def test_keys_are_private_to_their_owner_and_sign_what_verifies(tmp_path: Path) -> None:
    key = statements.create_key("acme", "maya", tmp_path)
    path = statements.key_path("acme", "maya", tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = statements.public_hex(key)
    text, signature = statements.sign(key, _statement())
    assert statements.verify(text, signature, public).member_id == "maya"
    # Any other key, any changed byte: refused.
    other = statements.public_hex(statements.create_key("acme", "sam", tmp_path))
    with pytest.raises(StatementInvalid, match="does not verify"):
        statements.verify(text, signature, other)
    with pytest.raises(StatementInvalid, match="does not verify"):
        statements.verify(text.replace('"approve"', '"reject"'), signature, public)
    os.chmod(path, 0o644)
    with pytest.raises(NoLocalKey, match="readable by others"):
        statements.load_key("acme", "maya", tmp_path)
    with pytest.raises(NoLocalKey, match="'leo' has no signing key"):
        statements.load_key("acme", "leo", tmp_path)


def test_only_canonical_timely_statements_parse() -> None:
    text = statements.encode(_statement())
    assert statements.parse(text).proposal_id == "p1"
    spaced = json.dumps(json.loads(text), indent=1)
    with pytest.raises(StatementInvalid, match="canonical"):
        statements.parse(spaced)
    naive = json.loads(text) | {"issued_at": "2026-01-01T00:00:00"}
    with pytest.raises(StatementInvalid, match="not a decision statement"):
        statements.parse(json.dumps(naive, sort_keys=True, separators=(",", ":")))
    with pytest.raises(StatementInvalid, match="not a decision statement"):
        statements.parse(text.replace('"valid_minutes":5', '"valid_minutes":600'))
    now = datetime.now(UTC)
    statements.check_window(_statement(issued_at=now), now)
    with pytest.raises(StatementInvalid, match="expired"):
        statements.check_window(_statement(issued_at=now - timedelta(minutes=6)), now)
    with pytest.raises(StatementInvalid, match="future"):
        statements.check_window(_statement(issued_at=now + timedelta(minutes=5)), now)


def test_untrusted_text_is_inert_for_a_terminal() -> None:
    hostile = "\x1b[2K\x1b[1A$12.00 \x1b]8;;https://evil.example\x07link\x1b]8;;\x07 \u202eevil\x07"
    shown = inert(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == "$12.00 link \\u202eevil\\u0007"
    assert inert("[bold]x[/]\nline two\ttab") == "[bold]x[/]\nline two\ttab"


@pytest.mark.parametrize(
    ("hidden", "code"),
    [
        ("\u200b", "\\u200b"),
        ("\u200d", "\\u200d"),
        ("\u2060", "\\u2060"),
        ("\ufeff", "\\ufeff"),
        ("\u061c", "\\u061c"),
    ],
    ids=["zero-width-space", "zero-width-joiner", "word-joiner", "bom", "arabic-letter-mark"],
)
def test_invisible_characters_are_shown_not_passed_through(hidden: str, code: str) -> None:
    assert inert(f"Fig{hidden}ma") == f"Fig{code}ma"
