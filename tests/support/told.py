"""A notifier for tests: remembers every notice and alert it was asked to deliver."""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.notify.notifier import Alert, ExceptionNotice


@dataclass
class Told:
    notices: list[tuple[str, str]] = field(default_factory=list)
    """(kind, exception id) of each notice."""
    alerts: list[Alert] = field(default_factory=list)

    async def notify(self, notice: ExceptionNotice) -> None:
        self.notices.append((notice.kind, notice.exception_id))

    async def alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
