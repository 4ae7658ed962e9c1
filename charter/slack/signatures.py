"""Slack's request signature check, with refusals logged as an operator needs them.

Bolt's own check logs a refusal at INFO with the signature and the whole request body (a
decision's reason, user ids). This is the same check, logging each refusal at WARNING with
its reason (stale or bad signature) and nothing secret.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.middleware.request_verification.async_request_verification import (
    AsyncRequestVerification,
)

from charter.slack.replay import WINDOW

log = logging.getLogger(__name__)


class SignedRequests(AsyncRequestVerification):
    def _debug_log_error(self, signature: Any, timestamp: Any, body: Any) -> None:
        try:
            stale = abs(time.time() - int(timestamp)) > WINDOW
        except (TypeError, ValueError):
            stale = True
        reason = "stale or missing timestamp" if stale else "bad signature"
        log.warning("slack request refused: %s", reason)
