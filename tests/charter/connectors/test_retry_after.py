"""A provider's `Retry-After` sets when the next attempt comes, within bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import modern_treasury as mt_sdk
import pytest

from activities._connector_errors import activity_error
from charter.connectors.base import ProviderUnavailable, retry_after
from charter.connectors.modern_treasury.client import translated
from charter.runtime.retry_after import MAX_RETRY_AFTER
from schemas.errors import ErrorType
from tests.support.standins.modern_treasury import Fault, ModernTreasuryStandIn

SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("header", "delay"),
    [
        ("7", timedelta(seconds=7)),
        ("0.2", SECOND),  # never sooner than a second
        ("0", None),  # nothing to honour: the backoff decides
        ("86400", timedelta(seconds=MAX_RETRY_AFTER)),  # capped: the retry budget decides
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
    ],
)
def test_seconds_bounded(header: str | None, delay: timedelta | None) -> None:
    assert retry_after(header) == delay


def test_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    delay = retry_after(format_datetime(later, usegmt=True))
    assert delay is not None and timedelta(seconds=25) <= delay <= timedelta(seconds=30)
    past = datetime.now(UTC) - timedelta(hours=1)
    assert retry_after(format_datetime(past, usegmt=True)) is None


def test_the_activity_retries_when_the_provider_said() -> None:
    error = activity_error(ProviderUnavailable("busy", retry_after=timedelta(seconds=9)))
    assert error.type == ErrorType.PROVIDER_UNAVAILABLE and not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=9)
    assert activity_error(ProviderUnavailable("busy")).next_retry_delay is None


async def test_a_429_from_modern_treasury_carries_its_retry_after(
    mt: ModernTreasuryStandIn,
) -> None:
    mt.faults.append(Fault("reject_429", method="GET", seconds=4))
    client = mt_sdk.AsyncModernTreasury(
        api_key=mt.add_key("read"),
        organization_id=mt.organization_id,
        base_url=mt.base_url,
        max_retries=0,
    )
    async with client:
        with (
            pytest.raises(ProviderUnavailable) as turned_away,
            translated("listing payment orders", writing=False),
        ):
            await client.payment_orders.list()
    assert turned_away.value.retry_after == timedelta(seconds=4)
    assert mt.faults == []
