"""Slack: exception cards, decisions from buttons, reminders and expiry (slack-bolt).

`SlackNotifier` is what activities call; `build_app` is the bolt app `charter slack` runs.
"""

from __future__ import annotations

from charter.notify.notifier import Notifier, NullNotifier
from charter.slack.app import web_client
from charter.slack.config import SlackSettings
from charter.slack.notices import SlackNotifier
from charter.storage import Database

__all__ = ["SlackSettings", "notifier_for"]


def notifier_for(settings: SlackSettings, db: Database, *, ui_url: str, namespace: str) -> Notifier:
    """The worker's notifier: Slack when a bot token is configured, otherwise none."""
    if not settings.enabled:
        return NullNotifier()

    return SlackNotifier(
        db, web_client(settings), ui_url=settings.temporal_ui_url or ui_url, namespace=namespace
    )
