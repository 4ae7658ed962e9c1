"""Where things are in the repository, wherever a test module sits in tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Committed workflow histories the replay tests replay (and `record_history` writes).
HISTORIES = REPO / "tests" / "histories"
