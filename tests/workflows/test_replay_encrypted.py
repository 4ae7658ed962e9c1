"""Committed histories replay through the same plugin (and so the same payload codec) as the
worker. Their payloads are encrypted with the committed test key (tests/support/payload_keys.py).

Re-record after a deliberate workflow change with
`CHARTER_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/workflows/test_replay_encrypted.py`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker

from charter.config.settings import Settings
from charter.crypto import KeyVersionUnavailable
from charter.crypto.codec import ENCODING, PayloadKeyring
from charter.temporal.plugin import CharterPlugin
from schemas import AgentRunInput, Decision, DecisionReceipt, RunState
from starter import start_run
from tests.support.history_scan import is_never_encoded, payloads
from tests.support.paths import HISTORIES
from tests.support.polling import eventually
from tests.support.queues import TASK_QUEUE
from tests.support.signing import decide
from workflows import AgentLoop

RECORDED = HISTORIES / "agent_loop_escalate_approve_encrypted.json"


def committed() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text(encoding="utf-8"))


@pytest.mark.skipif(
    not os.environ.get("CHARTER_RECORD_HISTORIES"),
    reason="set CHARTER_RECORD_HISTORIES=1 to re-record",
)
async def test_record_history(client: Client, worker: Worker, tenant: str) -> None:
    run = AgentRunInput(
        tenant_id=tenant,
        agent="payables",
        trigger=f"t-{uuid.uuid4().hex[:8]}",
        focus=["INV-1041", "INV-1043", "INV-1039"],
    )
    handle = await start_run(client, run, task_queue=TASK_QUEUE)

    async def waiting() -> RunState | None:
        state = await handle.query(AgentLoop.state)
        return state if state.stage == "awaiting_decision" else None

    state = await eventually(waiting)
    pending = next(p for p in state.proposals if p.status == "awaiting_decision")
    await decide(
        handle,
        Decision(
            proposal_id=pending.proposal.proposal_id, approver="sam", outcome="approve", reason="ok"
        ),
        result_type=DecisionReceipt,
    )
    await handle.result()
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    RECORDED.write_text(history.to_json(), encoding="utf-8")


@pytest.mark.parametrize("path", committed(), ids=lambda p: p.stem)
def test_committed_histories_are_encrypted(path: Path) -> None:
    # tests/workflows/test_replay.py replays each of them through CharterPlugin (and so the codec).
    encoded = [p for where, p in payloads(load(path)) if not is_never_encoded(where)]
    # The shortest run (AuditCheckpoint's: its input, the activity's input, summary and
    # result, its own result) still has five payloads, every one encrypted.
    assert len(encoded) >= 5 and all(p.metadata["encoding"] == ENCODING for p in encoded)


async def test_replay_without_the_key_fails_closed() -> None:
    replayer = Replayer(workflows=[AgentLoop], plugins=[CharterPlugin(PayloadKeyring.generate())])
    result = await replayer.replay_workflow(load(RECORDED), raise_on_replay_failure=False)
    # The workflow task fails on the payload it cannot decrypt (it is never read as plaintext).
    assert result.replay_failure is not None
    assert f'r#type: "{KeyVersionUnavailable.__name__}"' in str(result.replay_failure)


async def test_encrypting_a_plaintext_history_keeps_it_replayable() -> None:
    """The conversion tool for histories recorded before the codec (tests/support/encrypt_history.py)."""
    from charter.crypto.codec import EncryptionCodec, default_payload_keyring
    from tests.support.encrypt_history import encrypt_history

    history = load(RECORDED)
    codec = EncryptionCodec(default_payload_keyring(Settings()))
    for path, payload in list(payloads(history)):
        if not is_never_encoded(path):
            payload.CopyFrom(codec.decrypt(payload))  # what a pre-codec recording held
    assert not any(p.metadata["encoding"] == ENCODING for _, p in payloads(history))
    fresh = PayloadKeyring.generate("converted-1")
    encrypt_history(history, fresh)
    assert all(
        p.metadata["encoding"] == ENCODING
        for path, p in payloads(history)
        if not is_never_encoded(path)
    )
    replayer = Replayer(workflows=[AgentLoop], plugins=[CharterPlugin(fresh)])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_a_format_1_history_replays_through_the_format_2_codec() -> None:
    """Every committed history was recorded in payload format 1. The codec that writes
    format 2 still opens each of its payloads, the history replays through it, and the same
    history with every payload sealed anew (JSON values in format 2) replays as well."""
    from charter.crypto.codec import FORMAT, EncryptionCodec, default_payload_keyring

    history = load(RECORDED)
    keyring = default_payload_keyring(Settings())
    codec = EncryptionCodec(keyring)
    encoded = [p for path, p in payloads(history) if not is_never_encoded(path)]
    assert encoded and all(FORMAT not in p.metadata for p in encoded)
    opened = [codec.decrypt(p) for p in encoded]
    assert all(p.metadata["encoding"] != ENCODING for p in opened)
    replayer = Replayer(workflows=[AgentLoop], plugins=[CharterPlugin(keyring)])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    for payload, plaintext in zip(encoded, opened, strict=True):
        payload.CopyFrom(codec.encrypt(plaintext))
    assert any(p.metadata.get(FORMAT) == b"2" for p in encoded)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
