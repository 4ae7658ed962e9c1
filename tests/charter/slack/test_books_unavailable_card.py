"""An exception for books a provider kept turning away: the card says so, inertly, and
offers nothing to approve."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from charter.presentation.report import reasoning_failure_title
from charter.slack.cards import card_blocks, card_text
from charter.storage.slack_cards import CardState


def test_the_card_says_the_books_could_not_be_read() -> None:
    now = datetime.now(UTC)
    failure = {
        "kind": "books_unavailable",
        "message": "the books could not be read: Plaid: RATE_LIMIT_EXCEEDED *now* www.evil.example",
    }
    state = CardState(
        tenant_id="acme",
        tenant_name="Acme Robotics",
        exception_id="ex-0123456789",
        workflow_id="charter/acme/payables/abc",
        proposal_id="p0",
        agent="payables",
        status="open",
        context={"kind": "reasoning_failure", "failure": failure},
        opened_at=now,
        expires_at=now + timedelta(days=1),
        closed_at=None,
        decisions=[],
        executed_reference=None,
        rule_titles={},
    )
    blocks = json.dumps(card_blocks(state, ui_url="http://ui", namespace="default", run_id="r"))
    assert "*The books could not be read.*" in blocks and "RATE_LIMIT_EXCEEDED" in blocks
    assert "*now*" not in blocks and "www.evil.example" not in blocks  # inert
    assert '"actions"' not in blocks  # no buttons: nothing to approve
    assert "the books could not be read. Nothing was proposed or executed." in card_text(state)
    assert reasoning_failure_title(failure) == "books unavailable"
