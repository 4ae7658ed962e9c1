"""Structured logs carry the ids operators search by; redaction takes secrets, not ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from charter.config import redaction
from charter.runtime import logs
from schemas import workflow_id_for


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """`CHARTER_LOG_FORMAT=json` as the worker sets it up, written to a buffer; the test's
    own handlers restored afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    logs.configure(logging.INFO, "json")
    buffer = io.StringIO()
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        activity.logger.activity_info_on_message = True


def test_an_activity_log_line_names_tenant_run_and_proposal(
    json_logs: io.StringIO,
) -> None:
    workflow_id = workflow_id_for("acme", "payables", "invoice-received-INV-1044")

    @activity.defn
    def act() -> None:
        activity.logger.info(
            "executing with key %s", "sk-ant-" + "x1" * 20, extra={"proposal_id": "p2"}
        )

    environment = ActivityEnvironment()
    environment.info = environment.info.__class__(
        **{
            **environment.info.__dict__,
            "activity_type": "act",
            "workflow_id": workflow_id,
            "workflow_run_id": "r-0193",
        }
    )
    environment.run(act)
    line = json.loads(json_logs.getvalue())
    assert line["tenant_id"] == "acme" and line["agent"] == "payables"
    assert line["workflow_id"] == workflow_id and line["run_id"] == "r-0193"
    assert line["proposal_id"] == "p2" and line["activity"] == "act"
    assert line["message"] == "executing with key [REDACTED]"


def test_redaction_keeps_ids_and_paths() -> None:
    kept = [
        "run 0193a1c2-7c1e-7b3a-9c1d-2f3e4a5b6c7d",
        workflow_id_for("acme", "payables", "x"),
        "/tmp/pytest-of-root/pytest-12/test_worker_refuses0/.charter/audit-checkpoints.jsonl",
        "chain head 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
        "idempotency key ab12cd34ef56ab12cd34ef56ab12cd34",
        "ex-1a2b3c4d5e for INV-1044",
    ]
    for text in kept:
        assert redaction.redact(text) == text
    for secret in (
        "Bearer abcdefgh12345678",
        "key 9Qm3rX0vTq7yN2pLs5Wc8Zf1Hk4Jd6Ge0Ua3Ib5Oc7Pe=",
        "api_key=abcdef123456",
    ):
        assert redaction.REDACTED in redaction.redact(secret)
