"""Refuse a signed Slack request seen before inside the signature's validity window.

Bolt verifies the signature and refuses timestamps older than five minutes; a request
captured in transit could still be replayed within those five minutes. Every verified
request's signature is remembered until its timestamp leaves the window, in a bounded
cache: a repeat is refused with 401 and reaches no listener.

With a database, the memory is shared through PostgreSQL (`charter_meta.slack_requests`,
reached through one definer function): a restarted or second `charter slack` refuses a
request any of them saw inside the window. Without one, the cache is per process.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from charter.storage import Database

log = logging.getLogger(__name__)

#: Bolt's (and Slack's documented) tolerance for the request timestamp, in seconds.
WINDOW = 60 * 5


class ReplayGuard:
    def __init__(
        self, *, window: int = WINDOW, max_entries: int = 100_000, db: Database | None = None
    ) -> None:
        self._window = window
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._db = db

    async def remember(self, signature: str, timestamp: str) -> bool:
        """Record the request here and, with a database, for every process; False if any of
        them saw it already."""
        if not self.first_time(signature, timestamp):
            return False
        if self._db is None:
            return True
        expires = datetime.fromtimestamp(float(timestamp) + self._window, UTC)
        async with self._db.pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT charter.slack_request_first_seen($1, $2)", signature, expires
                )
            )

    def first_time(self, signature: str, timestamp: str, now: float | None = None) -> bool:
        """Record the request; False if it was seen already (a replay)."""
        now = time.time() if now is None else now
        self._evict(now)
        if signature in self._seen:
            return False
        try:
            sent = float(timestamp)
        except ValueError:
            return False
        self._seen[signature] = sent + self._window
        # Bounded: under a flood, forget the oldest. Bolt still refuses anything stale.
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    def _evict(self, now: float) -> None:
        while self._seen:
            signature, expires = next(iter(self._seen.items()))
            if expires >= now:
                break
            del self._seen[signature]

    async def middleware(
        self, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """A bolt global middleware; runs after bolt's own signature check."""
        if req.mode == "socket_mode":
            return await next()  # type: ignore[func-returns-value]
        signature = req.headers.get("x-slack-signature", [""])[0]
        timestamp = req.headers.get("x-slack-request-timestamp", ["0"])[0]
        if not await self.remember(signature, timestamp):
            log.warning("slack request refused: replayed within the %ss window", self._window)
            return BoltResponse(status=401, body={"error": "replayed request"})
        return await next()  # type: ignore[func-returns-value]
