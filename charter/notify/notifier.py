"""Telling people about exceptions: the interface activities call after their work commits.

Activities call a notifier only after their database transaction has committed, and a
notifier never raises into them: the decision, the audit entry and the action are the
truth; a chat message is a view of it. A retried activity would append its audit entries
twice, so a failed notification is logged, not retried by failing the activity; the Slack
notifier instead heals at the next reminder (it posts a card that is missing).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

#: Seconds a notifier may take before the activity moves on without it.
DELIVERY_TIMEOUT = 20.0

NoticeKind = Literal["opened", "reminder", "expired", "decided", "executed", "closed"]
"""`closed`: a decided proposal closed without executing (its facts would not hold still)."""


class ExceptionNotice(BaseModel):
    """What happened to which exception. The notifier reads the rest from the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: NoticeKind
    tenant_id: str
    exception_id: str
    workflow_id: str
    run_id: str
    at: datetime
    """Temporal's clock when the activity was scheduled (time-skipping moves it too)."""


class Alert(BaseModel):
    """Something critical about a tenant that no exception carries (a bill paid twice at the
    provider): told to the tenant's channel as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    text: str


class Notifier(Protocol):
    async def notify(self, notice: ExceptionNotice) -> None: ...

    async def alert(self, alert: Alert) -> None: ...


class NullNotifier:
    """The default when no chat is configured: exceptions surface in the CLI and the UI."""

    async def notify(self, notice: ExceptionNotice) -> None:
        return None

    async def alert(self, alert: Alert) -> None:
        return None


async def deliver(notifier: Notifier, notice: ExceptionNotice) -> None:
    """Call a notifier, never letting its failure undo or repeat committed work."""
    try:
        # Bounded well inside the activities' start-to-close timeout.
        async with asyncio.timeout(DELIVERY_TIMEOUT):
            await notifier.notify(notice)
    except Exception as exc:  # a chat outage must not fail a decision or an action
        log.warning(
            "notification %s for %s failed: %s",
            notice.kind,
            notice.exception_id,
            type(exc).__name__,
        )


async def deliver_alert(notifier: Notifier, alert: Alert) -> None:
    """Tell the tenant's channel, never letting a chat outage fail what found it."""
    try:
        async with asyncio.timeout(DELIVERY_TIMEOUT):
            await notifier.alert(alert)
    except Exception as exc:  # the finding is audited already; the chat is a view of it
        log.warning("alert for a tenant failed: %s", type(exc).__name__)
