"""A provider's `Retry-After`: how long it asked to be left alone, within bounds.

One reading for every caller that honours it (the model's SDK, the providers' SDKs): whole
or fractional seconds, or an HTTP date; a wait that is not positive, not finite or not
readable is None, and the caller's own backoff decides.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: A `Retry-After` is honoured up to this; the attempts stay counted against the caller's
#: retry budget, so a provider asking for hours reaches a human rather than parking the work.
MAX_RETRY_AFTER = 60.0


def retry_after_seconds(value: str | None) -> float | None:
    """The header's wait in seconds, at most `MAX_RETRY_AFTER`; None: the backoff decides."""
    if value is None:
        return None
    seconds = _seconds(value.strip())
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return (when - datetime.now(UTC)).total_seconds()
