"""Untrusted text on a card formats nothing and links nothing."""

from __future__ import annotations

import pytest

from charter.slack.cards import esc


@pytest.mark.parametrize(
    "domain", ["www.evil.example", "evil.example/pay", "pay.evil-site.com", "https://evil.example"]
)
def test_a_bare_domain_is_not_linkable(domain: str) -> None:
    shown = esc(f"Pay at {domain} now")
    assert domain not in shown
    assert shown.replace("\u200b", "") == f"Pay at {domain} now"


@pytest.mark.parametrize("marked", ["_urgent_", "*urgent*", "~urgent~", "`urgent`"])
def test_formatting_marks_format_nothing(marked: str) -> None:
    shown = esc(marked)
    assert not any(mark in shown for mark in "_*~`")
    assert "urgent" in shown


def test_amounts_and_identifiers_are_shown_as_they_are() -> None:
    assert esc("schedule_payment USD 1,440.00") == "schedule_payment USD 1,440.00"


def test_invisible_characters_are_visible_on_a_card() -> None:
    assert esc("Fig\u200bma\u061c") == "Fig\\u200bma\\u061c"
