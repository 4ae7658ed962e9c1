"""Errors made from their catalogue entry.

`schemas.errors` says, once, which error types a retry can help; an error raised across the
contract takes its retryability from there, so a raise site names what went wrong and its
message, and cannot contradict the workflow's retry policy. Here rather than in `schemas`,
which imports no Temporal code; activities and workflows both import it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from schemas.errors import ErrorType


class CatalogueError(ApplicationError):
    """An `ApplicationError` of a catalogued type, retryable exactly when the catalogue says."""

    def __init__(
        self,
        error: ErrorType,
        message: str,
        *details: object,
        next_retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(
            message,
            *details,
            type=error,
            non_retryable=not error.retryable,
            next_retry_delay=next_retry_delay,
        )


def run_failure(cause: ApplicationError) -> ApplicationError:
    """An activity's error as the run's own failure: its type, message and details, and
    final whatever the type, since the activity's retries are spent by the time the run
    fails (the next run starts afresh)."""
    return ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True)
