"""A connector's failure as the activity's error: one mapping for every activity that
talks to a provider, so that whether Temporal retries depends on what failed, not on
which activity saw it."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from charter.connectors import (
    ConnectorAuthError,
    ConnectorError,
    ProviderUnavailable,
    UnsupportedAction,
)
from schemas.errors import ErrorType


class CredentialUnavailable(ApplicationError):
    """The connector refused or no credential of the right scope exists. Ids only."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=ErrorType.CREDENTIAL_UNAVAILABLE, non_retryable=True)


def activity_error(exc: ConnectorError) -> ApplicationError:
    if isinstance(exc, ProviderUnavailable):
        # Turned away before anything was applied (a rate limit): later may work.
        return ApplicationError(str(exc), type=ErrorType.PROVIDER_UNAVAILABLE)
    if isinstance(exc, ConnectorAuthError):
        return CredentialUnavailable(str(exc))
    if isinstance(exc, UnsupportedAction):
        return ApplicationError(str(exc), type=ErrorType.UNSUPPORTED_ACTION, non_retryable=True)
    # The connector refused the request itself, or the provider answered, and not with
    # data: retrying cannot change that.
    return ApplicationError(str(exc), type=ErrorType.CONNECTOR_ERROR, non_retryable=True)
