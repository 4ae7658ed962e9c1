"""A connector's failure as the activity's error: one mapping for every activity that
talks to a provider, so that whether Temporal retries depends on what failed, not on
which activity saw it."""

from __future__ import annotations

from charter.connectors import (
    ConnectorAuthError,
    ConnectorError,
    ProviderUnavailable,
    UnsupportedAction,
)
from charter.temporal.errors import CatalogueError
from schemas.errors import ErrorType


class CredentialUnavailable(CatalogueError):
    """The connector refused or no credential of the right scope exists. Ids only."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.CREDENTIAL_UNAVAILABLE, message)


def activity_error(exc: ConnectorError) -> CatalogueError:
    if isinstance(exc, ConnectorAuthError):
        return CredentialUnavailable(str(exc))
    if isinstance(exc, ProviderUnavailable):
        # The provider said when to come back: then, not on Temporal's backoff.
        return CatalogueError(_error_type(exc), str(exc), next_retry_delay=exc.retry_after)
    return CatalogueError(_error_type(exc), str(exc))


def _error_type(exc: ConnectorError) -> ErrorType:
    if isinstance(exc, ProviderUnavailable):
        # Turned away before anything was applied (a rate limit): later may work.
        return ErrorType.PROVIDER_UNAVAILABLE
    if isinstance(exc, UnsupportedAction):
        return ErrorType.UNSUPPORTED_ACTION
    # The connector refused the request itself, or the provider answered, and not with
    # data: retrying cannot change that.
    return ErrorType.CONNECTOR_ERROR
