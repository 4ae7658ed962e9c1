"""A local HTTP server that speaks the Slack Web API methods Charter calls, and records them.

slack_sdk's AsyncWebClient talks to it through `base_url`, exactly as it talks to Slack:
form or JSON bodies, a bearer token, `{"ok": true, ...}` answers.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_TOKEN = "xoxb-test-not-a-real-token"
TEAM = "T0ACME"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    response: dict[str, Any]

    def text(self) -> str:
        """Everything a person would read in this message: text and every block's text."""
        blocks = self.args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return self.args.get("text", "") + "\n" + json.dumps(blocks, ensure_ascii=False)


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    """Methods that answer 500 (a Slack outage)."""
    port: int = 0
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def of(self, method: str, channel: str | None = None, **match: Any) -> list[Call]:
        found = [c for c in self.calls if c.method == method]
        if channel is not None:
            found = [c for c in found if c.args.get("channel") == channel]
        return [c for c in found if all(c.args.get(k) == v for k, v in match.items())]

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(await request.post())
        if method in self.failing:
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        response = self.respond(method, args)
        self.calls.append(Call(method, args, response))
        return web.json_response(response)

    def respond(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://acme.slack.com/",
                "team": "Acme",
                "user": "charter",
                "team_id": TEAM,
                "user_id": "U0CHARTER",
                "bot_id": "B0CHARTER",
            }
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000001.{next(self._ts):06d}"}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0MODAL", **args.get("view", {})}}
        return {"ok": False, "error": "unknown_method"}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self.handle)
        return app
