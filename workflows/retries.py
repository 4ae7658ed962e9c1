"""The retry policies the workflows give their activities: nothing retries forever."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from schemas.errors import NON_RETRYABLE


def bounded_retry(*, first: timedelta, longest: timedelta, attempts: int) -> RetryPolicy:
    """Backoff doubling from `first` up to `longest`, at most `attempts` attempts, and none
    for what the error catalogue calls final: what a retry cannot help (a refusal, a
    rejected model request)."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=longest,
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )
