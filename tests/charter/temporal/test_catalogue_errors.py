"""Errors made from their catalogue entry: the type and the retryability come from
`schemas.errors`, the message and details from the raise site."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities._connector_errors import CredentialUnavailable, activity_error
from activities.act import BackToHumans, NotAuthorised, RefusedAtExecution
from charter.connectors import (
    ConnectorAuthError,
    ConnectorError,
    ProviderUnavailable,
    UnsupportedAction,
)
from charter.temporal.errors import CatalogueError, run_failure
from schemas.errors import NON_RETRYABLE, ErrorType


@pytest.mark.parametrize("error", list(ErrorType))
def test_every_catalogued_type_is_retryable_as_the_catalogue_says(error: ErrorType) -> None:
    raised = CatalogueError(error, "what went wrong", "a detail")
    assert isinstance(raised, ApplicationError)
    assert raised.type == error and raised.message == "what went wrong"
    assert raised.non_retryable is not error.retryable
    assert raised.non_retryable is (str(error) in NON_RETRYABLE)
    assert list(raised.details) == ["a detail"]


def test_a_retry_delay_rides_along() -> None:
    raised = CatalogueError(
        ErrorType.REASONER_UNAVAILABLE, "overloaded", next_retry_delay=timedelta(seconds=7)
    )
    assert raised.next_retry_delay == timedelta(seconds=7) and not raised.non_retryable


def test_the_acts_refusals_keep_their_types_messages_and_details() -> None:
    refusals: list[tuple[ApplicationError, ErrorType, list[object]]] = [
        (NotAuthorised("no verdict"), ErrorType.NOT_AUTHORISED, []),
        (BackToHumans("sent back", "exc-1"), ErrorType.BACK_TO_HUMANS, ["exc-1"]),
        (RefusedAtExecution("denied now"), ErrorType.REFUSED_AT_EXECUTION, []),
        (CredentialUnavailable("no key"), ErrorType.CREDENTIAL_UNAVAILABLE, []),
    ]
    for raised, error, details in refusals:
        assert raised.type == error and raised.non_retryable
        assert list(raised.details) == details


@pytest.mark.parametrize(
    ("failure", "error", "retryable"),
    [
        (ProviderUnavailable("429"), ErrorType.PROVIDER_UNAVAILABLE, True),
        (ConnectorAuthError("revoked"), ErrorType.CREDENTIAL_UNAVAILABLE, False),
        (UnsupportedAction("no payroll"), ErrorType.UNSUPPORTED_ACTION, False),
        (ConnectorError("bad request"), ErrorType.CONNECTOR_ERROR, False),
    ],
)
def test_a_connector_failure_maps_to_one_type(
    failure: ConnectorError, error: ErrorType, retryable: bool
) -> None:
    raised = activity_error(failure)
    assert raised.type == error and raised.message == str(failure)
    assert raised.non_retryable is not retryable


def test_a_run_failure_is_final_whatever_the_activity_type() -> None:
    cause = CatalogueError(ErrorType.AUDIT_SINK_UNAVAILABLE, "cannot write", ["acme", 3])
    failed = run_failure(cause)
    assert failed.type == ErrorType.AUDIT_SINK_UNAVAILABLE and failed.non_retryable
    assert failed.message == "cannot write" and list(failed.details) == [["acme", 3]]
