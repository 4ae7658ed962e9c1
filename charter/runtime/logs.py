"""Process logging: text for people, JSON lines (`CHARTER_LOG_FORMAT=json`) for collectors.

A JSON line carries the ids an operator searches by: the tenant, the workflow and run, the
activity and the proposal. Temporal's SDK loggers attach the workflow and activity context to
their records; the tenant is read from the workflow id (`charter/<tenant>/<agent>/<digest>`);
a proposal id comes from `extra={"proposal_id": ...}`. Every handler also gets the
redaction filter, so neither format prints a secret.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

from charter.config import redaction

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Plain attributes passed with `extra=` that belong in the JSON line.
_EXTRA_IDS = ("tenant_id", "agent", "workflow_id", "run_id", "proposal_id", "exception_id")


def _ids(record: logging.LogRecord) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    context = getattr(record, "temporal_activity", None) or getattr(
        record, "temporal_workflow", None
    )
    if isinstance(context, dict):
        ids["workflow_id"] = context.get("workflow_id")
        ids["run_id"] = context.get("workflow_run_id") or context.get("run_id")
        if "activity_type" in context:
            ids["activity"] = context["activity_type"]
            ids["attempt"] = context.get("attempt")
    for name in _EXTRA_IDS:
        value = getattr(record, name, None)
        if value is not None:
            ids[name] = value
    workflow_id = ids.get("workflow_id")
    if "tenant_id" not in ids and isinstance(workflow_id, str):
        parts = workflow_id.split("/")
        if len(parts) == 4 and parts[0] == "charter":
            ids["tenant_id"], ids["agent"] = parts[1], parts[2]
    return {k: v for k, v in ids.items() if v is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
        }
        if record.exc_text:  # already formatted (and redacted) by the redaction filter
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = redaction.redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def configure(level: int = logging.INFO, log_format: str = "text") -> None:
    """Log to stderr in `log_format` ("text" or "json"), through the redaction filter."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    redaction.install()
    if log_format == "json":
        # The SDK appends its context dict to the message for text logs; in JSON it is fields.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
