"""The README's table of error types is the catalogue's: each type once, retryable as the
workflow's retry policy treats it."""

from __future__ import annotations

import re

from schemas.errors import ErrorType
from tests.support.paths import REPO

_ROW = re.compile(r"^\| `(?P<type>\w+)` \| .+ \| (?P<retryable>yes|no) \|$")


def test_each_error_type_is_in_the_readme_once() -> None:
    rows = [
        match.groupdict()
        for line in (REPO / "README.md").read_text().splitlines()
        if (match := _ROW.match(line)) and match["type"] in {str(t) for t in ErrorType}
    ]
    named = [row["type"] for row in rows]
    assert sorted(named) == sorted(str(t) for t in ErrorType), "each type exactly once"
    for row in rows:
        assert (row["retryable"] == "yes") == ErrorType(row["type"]).retryable, row
