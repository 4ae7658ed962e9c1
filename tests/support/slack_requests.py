"""Talking to Charter as Slack does: settings, signed requests, the bolt app behind HTTP,
tenants with a channel of their own, and the cards and clicks Slack would show and send."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import SecretStr

from charter.slack.app import web_client
from charter.slack.config import SlackSettings
from charter.slack.notices import SlackNotifier
from charter.storage import Database
from charter.storage import slack_cards as store
from tests.support.polling import eventually
from tests.support.standins.slack_web_api import BOT_TOKEN, TEAM, Call, FakeSlack

SLACK_QUEUE = "charter-slack-test"


SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


UI_URL = "http://temporal-ui.test:8233"


USERS = {"maya": "U0MAYA", "sam": "U0SAM", "leo": "U0LEO"}


def slack_settings(api_url: str, **kw: Any) -> SlackSettings:
    return SlackSettings(
        bot_token=SecretStr(BOT_TOKEN),
        signing_secret=SecretStr(SIGNING_SECRET),
        api_url=api_url,
        temporal_ui_url=UI_URL,
        **kw,
    )


def notifier(db: Database, fake: FakeSlack) -> SlackNotifier:
    return SlackNotifier(
        db, web_client(slack_settings(fake.base_url)), ui_url=UI_URL, namespace="default"
    )


def sign(
    body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    """The headers Slack sends: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


@dataclass
class Reply:
    status: int
    body: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


@dataclass
class SlackApp:
    """The real bolt app behind a real HTTP server, and a way to talk to it as Slack does."""

    url: str
    http: aiohttp.ClientSession

    async def post(self, body: str, headers: dict[str, str]) -> Reply:
        async with self.http.post(self.url, data=body.encode(), headers=headers) as resp:
            return Reply(resp.status, await resp.text())

    async def send(self, payload: dict[str, Any], **sign_kw: Any) -> Reply:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, sign(body, **sign_kw))


@dataclass
class SlackTenant:
    tenant_id: str
    channel: str


async def configure(
    db: Database,
    tenant_id: str,
    *,
    backup: str | None = None,
    backup_after: timedelta | None = None,
) -> SlackTenant:
    channel = "C" + secrets.token_hex(5).upper()
    async with db.tenant(tenant_id) as conn:
        await store.save_config(
            conn,
            store.SlackTenantConfig(
                tenant_id=tenant_id,
                channel_id=channel,
                team_id=TEAM,
                backup_member_id=backup,
                backup_after=backup_after,
            ),
        )
    return SlackTenant(tenant_id, channel)


async def card_for(fake: FakeSlack, channel: str) -> Call:
    """The card posted in a channel (the first top-level message there)."""

    async def posted() -> Call | None:
        cards = [c for c in fake.of("chat.postMessage", channel) if "thread_ts" not in c.args]
        return cards[0] if cards else None

    card: Call = await eventually(posted)
    return card


def buttons(card: Call) -> dict[str, dict[str, Any]]:
    for block in card.args["blocks"]:
        if block["type"] == "actions":
            return {e["action_id"]: e for e in block["elements"]}
    return {}


def click(card: Call, action_id: str, user: str, **override: Any) -> dict[str, Any]:
    """A block_actions payload as Slack sends it when `user` clicks a card's button."""
    channel, ts = card.args["channel"], card.response["ts"]
    button = buttons(card)[action_id]
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0CHARTER",
        "token": "legacy-verification-token",
        "trigger_id": f"{secrets.randbelow(10**9)}.{secrets.randbelow(10**9)}.abc",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": ts, "text": card.args["text"]},
        "response_url": "https://hooks.slack.com/actions/T0ACME/1/abc",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "decide",
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    payload.update(override)
    return payload


def submission(view: dict[str, Any], user: str, values: dict[str, str]) -> dict[str, Any]:
    """A view_submission payload for a modal Charter opened, with what the user typed."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0CHARTER",
        "token": "legacy-verification-token",
        "trigger_id": "1.2.abc",
        "view": {
            "id": "V0MODAL",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {
                    block: {block: {"type": "plain_text_input", "value": value}}
                    for block, value in values.items()
                }
            },
            "hash": "1700000000.abc",
        },
    }
