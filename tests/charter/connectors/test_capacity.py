"""A worker's pool, activities and providers' bulkheads are configured together and checked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from charter.config.settings import ConfigurationError, Settings
from charter.connectors.capacity import ACTIVITY_RESERVE, POOL_RESERVE, REMOTE_PROVIDERS, capacity


def test_the_defaults_leave_room_for_everything_else() -> None:
    found = capacity(Settings())
    assert found.in_flight == 4 * len(REMOTE_PROVIDERS)
    assert found.pool_size >= found.in_flight + POOL_RESERVE
    assert found.max_concurrent_activities >= found.in_flight + ACTIVITY_RESERVE


def test_per_provider_limits_and_timings_reach_the_bulkheads() -> None:
    settings = Settings(
        provider_limits="modern-treasury=6, plaid=1",
        provider_call_timeout=timedelta(seconds=7),
        breaker_failures=3,
    )
    bulkheads = capacity(settings).bulkheads()
    assert bulkheads.limits("modern-treasury").in_flight == 6
    assert bulkheads.limits("plaid").in_flight == 1
    assert bulkheads.limits("quickbooks").in_flight == 4
    assert bulkheads.limits("modern-treasury").call_timeout == timedelta(seconds=7)
    assert bulkheads.limits("modern-treasury").failures_to_open == 3


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({"db_pool_size": 15}, "CHARTER_DB_POOL_SIZE=15 can starve"),
        ({"max_concurrent_activities": 21}, "CHARTER_MAX_CONCURRENT_ACTIVITIES=21 can starve"),
        ({"provider_limits": "modern-treasury"}, "is not provider=number"),
        ({"provider_limits": "modern-treasury=0"}, "needs at least 1"),
    ],
)
def test_a_combination_that_can_starve_is_refused_in_one_line(
    settings: dict[str, object], refusal: str
) -> None:
    with pytest.raises(ConfigurationError, match=refusal) as caught:
        capacity(Settings(**settings))  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
