"""Export JSON Schemas of the public contract, for callers in other languages.

python -m schemas.export schemas/json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas import (
    AgentRunInput,
    AgentRunResult,
    AuditCheckpointInput,
    AuditCheckpointResult,
    Decision,
    DecisionReceipt,
    DecisionStatement,
    RunState,
)
from schemas.errors import catalogue

#: What a caller of `AgentLoop` exchanges with it: start input, result, the `decide`
#: update/signal payload and its receipt, the statement a decision carries signed, and the
#: `state` query.
CONTRACT: dict[str, type[BaseModel]] = {
    "AgentRunInput": AgentRunInput,
    "AgentRunResult": AgentRunResult,
    "Decision": Decision,
    "DecisionReceipt": DecisionReceipt,
    "DecisionStatement": DecisionStatement,
    "RunState": RunState,
    # The `AuditCheckpoint` workflow's input and result.
    "AuditCheckpointInput": AuditCheckpointInput,
    "AuditCheckpointResult": AuditCheckpointResult,
}


#: The error catalogue's file, beside the schemas.
ERRORS = "errors.json"


def schemas() -> dict[str, dict[str, Any]]:
    # Inputs are described as callers must send them, outputs as Charter writes them.
    inputs = {"AgentRunInput", "AuditCheckpointInput", "Decision", "DecisionStatement"}
    return {
        name: model.model_json_schema(mode="validation" if name in inputs else "serialization")
        for name, model in CONTRACT.items()
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "schemas/json")
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (out / f"{name}.schema.json").write_text(render(schema))
    # The error types a caller may see, beside the messages they may exchange.
    (out / ERRORS).write_text(render(catalogue()))
    print(f"wrote {len(CONTRACT)} schemas and the error catalogue to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
