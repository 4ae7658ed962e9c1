"""Telling the chat about a run's exception, once the transaction that changed it committed."""

from __future__ import annotations

from temporalio import activity

from charter.notify.notifier import ExceptionNotice, NoticeKind, Notifier, deliver
from schemas import RunRef


async def notify(notifier: Notifier, kind: NoticeKind, run: RunRef, exception_id: str) -> None:
    """A card, a reminder, an expiry or an outcome, stamped with Temporal's clock (when the
    activity's attempt was scheduled) so that time-skipping moves it too."""
    notice = ExceptionNotice(
        kind=kind,
        tenant_id=run.tenant_id,
        exception_id=exception_id,
        workflow_id=run.workflow_id,
        run_id=run.run_id,
        at=activity.info().current_attempt_scheduled_time,
    )
    await deliver(notifier, notice)
