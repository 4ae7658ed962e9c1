"""Approved with a tolerance: moves within it hold, anything beyond it sends back."""

from __future__ import annotations

from decimal import Decimal

from charter.governance.rejudge import shown_changes
from charter.services.tolerance import common

SHOWN = {"campaign": {"daily_budget": 400.0, "status": "active"}}


def _now(budget: float, status: str = "active") -> dict[str, object]:
    return {"campaign": {"daily_budget": budget, "status": status}}


def test_without_a_tolerance_any_move_is_a_change() -> None:
    assert shown_changes(SHOWN, _now(401.0)) == {
        "campaign.daily_budget": {"approved": 400.0, "now": 401.0}
    }


def test_a_move_within_the_tolerance_holds_and_one_beyond_does_not() -> None:
    allowed = {"campaign.daily_budget": Decimal("0.10")}
    assert shown_changes(SHOWN, _now(440.0), allowed) == {}
    assert shown_changes(SHOWN, _now(360.0), allowed) == {}
    assert list(shown_changes(SHOWN, _now(440.5), allowed)) == ["campaign.daily_budget"]
    # A tolerance covers the facts it names, and only numbers.
    assert list(shown_changes(SHOWN, _now(400.0, "paused"), allowed)) == ["campaign.status"]
    assert list(shown_changes(SHOWN, {"campaign": {"status": "active"}}, allowed)) == [
        "campaign.daily_budget"
    ]


def test_the_approvers_share_only_what_each_allowed() -> None:
    maya = {"campaign.daily_budget": Decimal("0.10"), "invoice.amount": Decimal("0.02")}
    sam = {"campaign.daily_budget": Decimal("0.05")}
    assert common([maya, sam]) == {"campaign.daily_budget": Decimal("0.05")}
    assert common([maya, None]) is None
    assert common([]) is None
