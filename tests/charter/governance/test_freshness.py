"""The maximum age of an observation an autonomous action may execute on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from charter.config.settings import Settings
from charter.governance.freshness import too_old

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_an_observation_at_the_maximum_age_is_still_fresh() -> None:
    assert too_old(T0, T0 + timedelta(minutes=5), timedelta(minutes=5)) is None


def test_an_older_observation_says_how_old() -> None:
    reason = too_old(T0, T0 + timedelta(minutes=7, seconds=3), timedelta(minutes=5))
    assert reason is not None and "7m03s old" in reason and "5m00s" in reason


def test_the_maximum_age_is_a_setting() -> None:
    assert Settings(_env_file=None).max_observation_age == timedelta(minutes=5)  # type: ignore[call-arg]
    assert Settings(  # type: ignore[call-arg]
        _env_file=None, max_observation_age="PT30S"
    ).max_observation_age == timedelta(seconds=30)
