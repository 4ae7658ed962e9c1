"""The Slack side of `Notifier`: one card per exception, kept in step with the database.

Every notice re-renders the card from the database (exception, decisions, action), so a
card can never show a state that did not commit, and updating twice is harmless. Posting
is the one step that must not repeat: the card row is claimed before `chat.postMessage`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from charter.notify.notifier import Alert, ExceptionNotice
from charter.slack.cards import approvals_required, card_blocks, card_text, esc, when
from charter.storage import Database
from charter.storage import slack_cards as store
from charter.storage.slack_cards import Card, CardState, SlackTenantConfig

log = logging.getLogger(__name__)


def human(delta: timedelta) -> str:
    minutes = max(round(delta.total_seconds() / 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return " ".join(p for p in parts if p) or "0m"


class SlackNotifier:
    def __init__(
        self, db: Database, client: AsyncWebClient, *, ui_url: str, namespace: str
    ) -> None:
        self._db = db
        self._client = client
        self._ui_url = ui_url
        self._namespace = namespace

    async def notify(self, notice: ExceptionNotice) -> None:
        async with self._db.tenant(notice.tenant_id) as conn:
            config = await store.get_config(conn, notice.tenant_id)
        if config is None:
            return  # this tenant does not decide in Slack
        if notice.kind == "opened":
            await self._ensure_card(notice, config)
        elif notice.kind == "reminder":
            await self._remind(notice, config)
        elif notice.kind == "expired":
            card = await self._refresh(notice)
            if card is not None and card.message_ts is not None:
                await self._client.chat_postMessage(
                    channel=card.channel_id,
                    thread_ts=card.message_ts,
                    text=":hourglass: Expired without a decision. Nothing was executed.",
                )
        elif notice.kind == "closed":
            await self._closed(notice)
        else:  # decided, executed
            await self._refresh(notice)

    async def alert(self, alert: Alert) -> None:
        async with self._db.tenant(alert.tenant_id) as conn:
            config = await store.get_config(conn, alert.tenant_id)
        if config is None:
            return  # this tenant does not decide in Slack
        await self._client.chat_postMessage(
            channel=config.channel_id,
            text=f":rotating_light: {esc(alert.text, 1500)}",
            unfurl_links=False,
            unfurl_media=False,
        )

    async def _state(self, notice: ExceptionNotice) -> tuple[CardState | None, Card | None]:
        async with self._db.tenant(notice.tenant_id) as conn:
            state = await store.card_state(conn, notice.tenant_id, notice.exception_id)
            card = await store.get_card(conn, notice.tenant_id, notice.exception_id)
        return state, card

    def _render(self, state: CardState, run_id: str) -> tuple[str, list[dict[str, Any]]]:
        blocks = card_blocks(state, ui_url=self._ui_url, namespace=self._namespace, run_id=run_id)
        return card_text(state), blocks

    async def _ensure_card(self, notice: ExceptionNotice, config: SlackTenantConfig) -> Card | None:
        """Post the card unless it is posted (or being posted). Returns the card row."""
        tenant, exception_id = notice.tenant_id, notice.exception_id
        async with self._db.tenant(tenant) as conn:
            state = await store.card_state(conn, tenant, exception_id)
            if state is None:
                return None
            claimed = await store.claim_card(
                conn, tenant, exception_id, config.channel_id, notice.at
            )
        if claimed:
            text, blocks = self._render(state, notice.run_id)
            try:
                resp = await self._client.chat_postMessage(
                    channel=config.channel_id,
                    text=text,
                    blocks=blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except Exception:
                async with self._db.tenant(tenant) as conn:
                    await store.release_card(conn, tenant, exception_id)
                raise
            async with self._db.tenant(tenant) as conn:
                await store.complete_card(
                    conn, tenant, exception_id, str(resp["channel"]), str(resp["ts"])
                )
        async with self._db.tenant(tenant) as conn:
            return await store.get_card(conn, tenant, exception_id)

    async def _refresh(self, notice: ExceptionNotice) -> Card | None:
        state, card = await self._state(notice)
        if state is None or card is None or card.message_ts is None:
            return card
        text, blocks = self._render(state, notice.run_id)
        await self._client.chat_update(
            channel=card.channel_id, ts=card.message_ts, text=text, blocks=blocks
        )
        return card

    async def _closed(self, notice: ExceptionNotice) -> None:
        """The card shows the closure, and its thread tells the approvers why."""
        card = await self._refresh(notice)
        state, _ = await self._state(notice)
        if card is None or card.message_ts is None or state is None:
            return
        await self._client.chat_postMessage(
            channel=card.channel_id,
            thread_ts=card.message_ts,
            text=(
                ":warning: Closed without executing: "
                f"{esc(state.closed_unstable or 'the facts kept moving', 1500)}. Nothing was "
                "executed; a new run proposes it afresh."
            ),
        )

    async def _remind(self, notice: ExceptionNotice, config: SlackTenantConfig) -> None:
        # Heals a card that failed to post at escalation (Slack was down, say).
        card = await self._ensure_card(notice, config)
        state, _ = await self._state(notice)
        if card is None or card.message_ts is None or state is None or state.status != "open":
            return
        approvals = sum(1 for d in state.decisions if d.outcome == "approve")
        required = approvals_required(state)
        count = f" ({approvals} of {required} approvals)" if required > 1 else ""
        await self._client.chat_postMessage(
            channel=card.channel_id,
            thread_ts=card.message_ts,
            text=(
                f":alarm_clock: Reminder: still awaiting a decision{count}. Expires "
                f"{when(state.expires_at)} (in {human(state.expires_at - notice.at)})."
            ),
        )
        await self._maybe_call_backup(notice, config, card, state)

    async def _maybe_call_backup(
        self, notice: ExceptionNotice, config: SlackTenantConfig, card: Card, state: CardState
    ) -> None:
        """After the configured delay, call in the backup approver, once.

        It rides on the workflow's reminders, so it fires at the first reminder at or after
        the delay: its precision is the reminder interval.
        """
        if config.backup_member_id is None or config.backup_after is None:
            return
        waited = notice.at - card.opened_at
        if waited < config.backup_after:
            return
        async with self._db.tenant(notice.tenant_id) as conn:
            backup = await store.member(conn, notice.tenant_id, config.backup_member_id)
            if backup is None or not backup.active or backup.slack_user_id is None:
                log.warning("backup approver of %s is not reachable in Slack", notice.tenant_id)
                return
            if not await store.mark_backup_notified(
                conn, notice.tenant_id, notice.exception_id, notice.at
            ):
                return
        await self._client.chat_postMessage(
            channel=card.channel_id,
            thread_ts=card.message_ts,
            reply_broadcast=True,
            text=(
                f":rotating_light: <@{backup.slack_user_id}>, you are the backup approver: "
                f"{state.exception_id} has waited {human(waited)} without a decision."
            ),
        )
