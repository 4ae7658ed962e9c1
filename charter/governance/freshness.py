"""How old an observation an autonomous action may still execute on.

The act re-reads, under row locks, every fact the constitution's rules depend on, so no
rule ever judges a stale fact. The model, though, reasoned on the whole observation (the
other invoices, the balances, the campaigns' history), and that context is not re-read: it
could only be refreshed by asking the model again. So past a maximum age an autonomous
action does not execute on it; it goes to a human with the decisive facts re-read just now.
An approved action is not held to it: the approval covers the facts it was shown, and the
act compares them with the facts re-read (an exception has its own expiry).
"""

from __future__ import annotations

from datetime import datetime, timedelta


def too_old(observed_at: datetime, now: datetime, max_age: timedelta) -> str | None:
    """Why an observation is too old to act on autonomously, or None if it is not."""
    age = now - observed_at
    if age <= max_age:
        return None
    return (
        f"the observation the model reasoned on is {_span(age)} old, older than the "
        f"{_span(max_age)} an autonomous action may execute on"
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60:02d}s"
