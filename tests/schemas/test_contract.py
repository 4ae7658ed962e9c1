"""The public contract: names other systems depend on, and the exported JSON Schemas."""

from __future__ import annotations

import hashlib
import json

from charter.config.settings import Settings
from charter.temporal import search_attributes as sa
from schemas import AgentRunInput, workflow_id_for
from schemas.errors import catalogue
from schemas.export import ERRORS, render, schemas
from tests.support.paths import REPO
from workflows import AgentLoop

EXPORTED = REPO / "schemas" / "json"


def test_exported_json_schemas_are_current() -> None:
    for name, schema in schemas().items():
        path = EXPORTED / f"{name}.schema.json"
        assert path.exists(), f"run `make schemas`: {path} is missing"
        assert path.read_text() == render(schema), f"run `make schemas`: {name} changed"
    errors = EXPORTED / ERRORS
    assert errors.exists() and errors.read_text() == render(catalogue()), (
        "run `make schemas`: the error catalogue changed"
    )


def test_decision_schema_names_the_fields_callers_send() -> None:
    decision = json.loads((EXPORTED / "Decision.schema.json").read_text())
    assert set(decision["required"]) == {"proposal_id", "approver", "outcome"}
    assert decision["properties"]["outcome"]["enum"] == ["approve", "reject"]


def test_public_names() -> None:
    assert AgentLoop.__temporal_workflow_definition.name == "AgentLoop"  # type: ignore[attr-defined]
    defn = AgentLoop.__temporal_workflow_definition  # type: ignore[attr-defined]
    assert "decide" in defn.updates and "decide" in defn.signals and "state" in defn.queries
    assert Settings(_env_file=None).task_queue == "charter"  # type: ignore[call-arg]
    assert Settings(_env_file=None).temporal_namespace == "default"  # type: ignore[call-arg]
    assert {k.name for k in sa.ALL} == {
        "CharterTenant",
        "CharterAgent",
        "CharterStage",
        "CharterOutcomes",
        "CharterActionTypes",
    }


def test_workflow_id_is_deterministic() -> None:
    run = AgentRunInput(tenant_id="acme", agent="payables", trigger="invoice-INV-1")
    workflow_id = workflow_id_for(run.tenant_id, run.agent, run.trigger)
    assert workflow_id == workflow_id_for("acme", "payables", "invoice-INV-1")
    # The trigger names a record: the id carries only its digest (the server stores ids in
    # plaintext), while the tenant and agent slugs stay readable for operators.
    assert (
        workflow_id == "charter/acme/payables/" + hashlib.sha256(b"invoice-INV-1").hexdigest()[:16]
    )
    assert "INV" not in workflow_id
    assert workflow_id_for("acme", "payables", "invoice-INV-2") != workflow_id
