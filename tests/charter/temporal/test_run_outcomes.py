"""`charter_runs{outcome}`: a run is as good as its worst proposal."""

from __future__ import annotations

import pytest

from charter.temporal.stages import run_outcome


@pytest.mark.parametrize(
    ("summary", "outcome"),
    [
        ({"p1": "executed", "p2": "executed"}, "executed"),
        ({"p1": "executed", "p2": "denied"}, "denied"),
        ({"p1": "denied", "p2": "rejected"}, "rejected"),
        ({"p1": "rejected", "p2": "expired", "p3": "executed"}, "expired"),
        ({"p1": "expired", "p2": "failed"}, "failed"),
        ({}, "no_proposals"),
        ({"reasoning": "failed", "escalated": "p0"}, "reasoning_failed"),
        ({"p1": "awaiting_decision"}, "other"),
    ],
)
def test_run_outcome(summary: dict[str, str], outcome: str) -> None:
    assert run_outcome(summary) == outcome
