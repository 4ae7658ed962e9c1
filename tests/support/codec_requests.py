"""Talking to a codec server as the Temporal UI does: its token and the payloads' JSON form."""

from __future__ import annotations

import base64

from temporalio.api.common.v1 import Payload

TOKEN = "codec-test-token-" + "x" * 24


def as_json(payloads: list[Payload]) -> dict[str, object]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }
