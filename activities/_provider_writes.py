"""A write at the provider under an action's idempotency key: made at most once, found again.

What a provider documents, and what follows:
- it saves a key's result only once the request completes, and forgets it after its
  retention: the same key is sent again only while the provider still holds it, and never
  by the SDK behind Charter's back (the writing client does not retry);
- its lists are eventually consistent: a lookup that finds nothing proves nothing until the
  list lag has passed since the last attempt that may have reached it;
- an earlier attempt may have been applied with its answer lost (worker killed, timeout):
  the write is looked up by its key before anything is created.

Once the retention of an attempt whose outcome is unknown has passed, nothing is created
again: a human settles it (`charter actions reconcile`). A provider's refusal of an
authorised action, and a provider still turning requests away after the retry budget, are a
human's business too: `Escalation`, which the act turns into an exception.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from activities._connector_errors import activity_error
from charter.connectors import (
    ActionRefusedByBooks,
    BooksWriter,
    ConnectorError,
    KeyLifetime,
    OutcomeUnknown,
    ProviderRefused,
    ProviderUnavailable,
)
from charter.connectors.base import WriteLookup
from charter.storage.provider_writes import OpenAttempts
from charter.temporal.errors import CatalogueError
from schemas import Proposal
from schemas.errors import ErrorType

#: Attempts of the act after which a provider still turning requests away (rate limit,
#: outage) is escalated to a human instead of retried: with the workflow's backoff (1 s
#: doubling to 30 s), about four minutes. Below the workflow's own bound (20), so a human
#: hears of it rather than the proposal failing quietly.
RETRY_BUDGET = 12

EscalationKind = Literal["provider_refused", "outcome_unknown", "provider_unavailable"]


class Escalation(Exception):
    """The action is authorised but the provider's answer leaves it to a human."""

    def __init__(self, kind: EscalationKind, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


async def perform(
    writer: BooksWriter,
    proposal: Proposal,
    key: str,
    earlier: OpenAttempts,
    *,
    attempt: int = 1,
) -> str:
    """The provider's reference for the action under `key`, made at most once.

    `earlier`: attempts under the key whose outcome nobody recorded. A refusal by the books
    (`ActionRefusedByBooks`) is the caller's to record; `Escalation` the caller's to send to
    a human."""
    try:
        found = await writer.find(key)
        if found is not None:
            return found
        if writer.key_lifetime is not None:
            may_send_again(writer.key_lifetime, earlier, key, datetime.now(UTC))
        try:
            return await writer.execute(proposal, key)
        except OutcomeUnknown as exc:
            found = await writer.find(key)  # only a hit counts: the list may lag
            if found is not None:
                return found
            lag = writer.key_lifetime.list_lag if writer.key_lifetime else None
            raise CatalogueError(
                ErrorType.OUTCOME_UNKNOWN,
                f"{exc}; not found at the provider yet, the next attempt looks again first",
                next_retry_delay=_at_least_a_second(lag),
            ) from None
    except ActionRefusedByBooks:
        raise
    except ProviderRefused as exc:
        raise Escalation(
            "provider_refused",
            str(exc),
            {"status": exc.status, "provider_error": exc.provider_error or str(exc)},
        ) from None
    except ProviderUnavailable as exc:
        if attempt >= RETRY_BUDGET:
            detail = {"attempts": attempt, "provider_error": str(exc)}
            raise Escalation(
                "provider_unavailable", f"{exc}; still after {attempt} attempts", detail
            ) from None
        raise activity_error(exc) from None
    except ConnectorError as exc:
        raise activity_error(exc) from None


def may_send_again(lifetime: KeyLifetime, earlier: OpenAttempts, key: str, now: datetime) -> None:
    """Refuse to send while a lookup cannot yet be trusted, and for good once the provider
    may have forgotten the key of an attempt whose outcome is unknown."""
    first, last = earlier.first_at, earlier.last_at
    if first is None or last is None:
        return
    if now >= first + lifetime.retention:
        raise Escalation(
            "outcome_unknown",
            f"the outcome of the payment under key {key} is unknown, and the provider's "
            f"hold on the key (first sent {first.isoformat()}) has passed: nothing is sent "
            "again; settle it with `charter actions reconcile`",
            {
                "first_attempt_at": first.isoformat(),
                "last_attempt_at": last.isoformat(),
                "attempts": len(earlier.attempts),
                "retention_seconds": lifetime.retention.total_seconds(),
            },
        )
    not_before_trusted(lifetime, earlier, now)


def not_before_trusted(lifetime: KeyLifetime, earlier: OpenAttempts, now: datetime) -> None:
    """Retry later while the provider's lists may not show what an earlier attempt wrote."""
    last = earlier.last_at
    if last is None:
        return
    trusted_from = last + lifetime.list_lag
    if now < trusted_from:
        raise CatalogueError(
            ErrorType.OUTCOME_UNKNOWN,
            f"an earlier attempt under the key may still appear at the provider; its lists "
            f"are trusted from {trusted_from.isoformat()}, looking again then",
            next_retry_delay=_at_least_a_second(trusted_from - now),
        )


def _at_least_a_second(delay: timedelta | None) -> timedelta | None:
    """The retry's delay: when a lookup can next be trusted (never sooner than a second)."""
    return None if delay is None else max(delay, timedelta(seconds=1))


async def find_earlier(finder: WriteLookup, key: str, earlier: OpenAttempts) -> str | None:
    """The reference of a write an earlier attempt made under `key`, asked with a read
    credential; None when the provider holds none. Not trusted to hold none before the
    list lag has passed since the last of the `earlier` attempts: retried then, before this
    attempt commits an intent of its own (which would move that moment on)."""
    try:
        found = await finder.find(key)
    except ConnectorError as exc:
        # Not knowing is no licence to judge again and perhaps pay twice: ask again.
        raise CatalogueError(ErrorType.PROVIDER_UNAVAILABLE, str(exc)) from None
    if found is None and finder.key_lifetime is not None:
        not_before_trusted(finder.key_lifetime, earlier, datetime.now(UTC))
    return found
