"""Encrypt a history recorded before the payload codec, so it replays through `CharterPlugin`.

    .venv/bin/python -m tests.support.encrypt_history tests/histories/old.json [more.json ...]

Every payload (except search attributes, which the server indexes and never encodes) is
encrypted with the test payload key, and plain failure messages and stack traces move into
encoded attributes, exactly as the encoded-attributes failure converter would have written
them. The payloads' plaintext is unchanged, so replay sees the same values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.converter import default

from charter.config.settings import Settings
from charter.crypto.codec import ENCODING, EncryptionCodec, PayloadKeyring, default_payload_keyring
from tests.support.history_scan import is_never_encoded, walk


def encrypt_history(history: WorkflowHistory, keyring: PayloadKeyring) -> WorkflowHistory:
    codec = EncryptionCodec(keyring)
    to_payload = default().payload_converter.to_payload
    for event in history.events:
        for path, msg in list(walk(event)):
            if isinstance(msg, Failure) and not msg.HasField("encoded_attributes") and msg.message:
                attrs = to_payload({"message": msg.message, "stack_trace": msg.stack_trace})
                msg.encoded_attributes.CopyFrom(codec.encrypt(attrs))
                msg.message, msg.stack_trace = "Encoded failure", ""
            elif (
                isinstance(msg, Payload)
                and not is_never_encoded(path)
                and msg.metadata.get("encoding") != ENCODING
            ):
                msg.CopyFrom(codec.encrypt(msg))
    return history


def main(paths: list[str]) -> None:
    keyring = default_payload_keyring(Settings())
    for name in paths:
        path = Path(name)
        history = WorkflowHistory.from_json("encrypt", path.read_text(encoding="utf-8"))
        path.write_text(
            json.dumps(json.loads(encrypt_history(history, keyring).to_json()), indent=2) + "\n",
            encoding="utf-8",
        )
        print(f"encrypted {path} with payload key {keyring.current}")


if __name__ == "__main__":
    import os

    from tests.support.payload_keys import TEST_PAYLOAD_KEYS

    os.environ["CHARTER_PAYLOAD_KEYS"] = TEST_PAYLOAD_KEYS
    main(sys.argv[1:])
