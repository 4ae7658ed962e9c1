"""Helpers for end-to-end governance tests: adopt a variant of the Acme constitution."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities import ActActivities, Deps
from charter.crypto.anchors import TrustAnchors
from charter.demo.seed import constitution_source
from charter.reasoners import OfflineReasoner
from charter.services.adoption import adopt
from charter.storage import Database
from schemas import RunRef
from tests.support.signing import decide
from tests.support.vault import session_vault


async def adopt_variant(admin_dsn: str, tenant: str, old: str, new: str) -> int:
    """Apply the Acme constitution with one text replacement, as the owner maya."""
    text = constitution_source("acme")
    assert old in text
    adopted = await adopt(admin_dsn, tenant, text.replace(old, new), by="maya", note="test variant")
    assert adopted.created
    return adopted.constitution.version


async def update_error(handle: WorkflowHandle[Any, Any], payload: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await decide(handle, payload)
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def run_ref(handle: WorkflowHandle[Any, Any], tenant: str, agent: str) -> RunRef:
    desc = await handle.describe()
    return RunRef(tenant_id=tenant, agent=agent, workflow_id=handle.id, run_id=desc.run_id or "")


def act_activities(db: Database, anchors: TrustAnchors | None = None) -> ActActivities:
    return ActActivities(
        Deps(
            credentials=session_vault(),
            db=db,
            reasoner=OfflineReasoner(),
            trust_anchors=anchors,
        )
    )


async def actions(db: Database, tenant: str) -> list[dict[str, Any]]:
    async with db.tenant(tenant) as conn:
        rows = await conn.fetch(
            "SELECT proposal_id, proposal::text AS proposal, authorisation::text AS auth "
            "FROM charter.actions WHERE tenant_id = $1 ORDER BY executed_at",
            tenant,
        )
    return [dict(r) for r in rows]
