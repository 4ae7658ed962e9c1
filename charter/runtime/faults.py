"""Test-only crash points for the fault-injection suite (`make faults`).

A worker process started with `CHARTER_FAULT_POINT=<name>` kills itself with SIGKILL the
first time it reaches `crash_point(<name>)`: no cleanup, no goodbye, exactly what a power
cut or the OOM killer does at that line. Unset (always, outside that suite) it is a dict
lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

#: The boundaries the suite crashes at, in the order a run reaches them.
POINTS = (
    "observe",  # reading the books
    "reason",  # waiting on the model
    "intent-committed",  # the write-ahead intent is committed, the connector not called
    "connector-wrote",  # the connector wrote, its result not committed
    "decision-recorded",  # a decision is committed, the activity has not returned
)


def crash_point(name: str) -> None:
    if os.environ.get("CHARTER_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
