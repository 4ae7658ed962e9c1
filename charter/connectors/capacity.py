"""A worker's capacity, configured together: its pool, its activities, its providers' bulkheads.

Checked before the worker starts; a combination that can starve the pool or the activity
slots is refused with one line:
- every call in flight renews its write lease in a short transaction on the heartbeat's
  cadence and then records its result, so the pool must hold a connection for each call the
  bulkheads let out at once, and `POOL_RESERVE` more for everything else (another tenant's
  read, a human's decision);
- an activity waiting on a provider holds one of the worker's activity slots, so the
  providers' calls in flight must leave `ACTIVITY_RESERVE` slots for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.config.settings import ConfigurationError, Settings
from charter.connectors.calls import worker_bulkheads
from charter.connectors.registry import PROVIDERS
from charter.runtime.bulkheads import Bulkheads, ProviderLimits
from charter.storage.connector_config import DEFAULT_PROVIDER

#: Connections kept for work that calls no provider.
POOL_RESERVE = 4
#: Activity slots kept for work that calls no provider.
ACTIVITY_RESERVE = 10

#: The providers reached over the network (the demo books are Charter's own database).
REMOTE_PROVIDERS = tuple(sorted(p for p in PROVIDERS if p != DEFAULT_PROVIDER))


@dataclass(frozen=True)
class Capacity:
    pool_size: int
    max_concurrent_activities: int
    limits: dict[str, ProviderLimits]

    @property
    def in_flight(self) -> int:
        return sum(limit.in_flight for limit in self.limits.values())

    def bulkheads(self) -> Bulkheads:
        return worker_bulkheads(per_provider=self.limits)


def _per_provider(raw: str | None) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in REMOTE_PROVIDERS or not value.strip().isdigit():
            raise ConfigurationError(
                f"CHARTER_PROVIDER_LIMITS: {part.strip()!r} is not provider=number "
                f"(providers: {', '.join(REMOTE_PROVIDERS)})"
            )
        found[name] = int(value)
        if found[name] < 1:
            raise ConfigurationError(f"CHARTER_PROVIDER_LIMITS: {name} needs at least 1 call")
    return found


def capacity(settings: Settings) -> Capacity:
    """The worker's capacity from its settings; `ConfigurationError` (one line) if it can
    starve."""
    overrides = _per_provider(settings.provider_limits)
    limits = {
        provider: ProviderLimits(
            in_flight=overrides.get(provider, settings.provider_in_flight),
            call_timeout=settings.provider_call_timeout,
            wait=settings.provider_wait,
            failures_to_open=settings.breaker_failures,
            open_for=settings.breaker_open_for,
        )
        for provider in REMOTE_PROVIDERS
    }
    found = Capacity(settings.db_pool_size, settings.max_concurrent_activities, limits)
    if found.pool_size < found.in_flight + POOL_RESERVE:
        raise ConfigurationError(
            f"CHARTER_DB_POOL_SIZE={found.pool_size} can starve: the providers' bulkheads let "
            f"{found.in_flight} calls out at once, each needing a connection to renew its lease "
            f"and record its result; give the pool at least {found.in_flight + POOL_RESERVE} "
            "or lower CHARTER_PROVIDER_IN_FLIGHT / CHARTER_PROVIDER_LIMITS"
        )
    if found.max_concurrent_activities < found.in_flight + ACTIVITY_RESERVE:
        raise ConfigurationError(
            f"CHARTER_MAX_CONCURRENT_ACTIVITIES={found.max_concurrent_activities} can starve: "
            f"{found.in_flight} activities may wait on providers at once; allow at least "
            f"{found.in_flight + ACTIVITY_RESERVE} or lower the providers' limits"
        )
    return found
