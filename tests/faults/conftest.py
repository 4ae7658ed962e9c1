"""The fault-injection suite runs only under `make faults` (CHARTER_FAULTS=1): it starts and
kills real processes for minutes, which the ordinary suite should not pay for."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("CHARTER_FAULTS") == "1":
        return
    skip = pytest.mark.skip(reason="fault injection runs with `make faults`")
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(skip)
