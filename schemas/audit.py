"""The `AuditCheckpoint` workflow's contract: where checkpoints go, and what was signed.

The workflow and its activity carry only the tenant (or none, for every tenant) and the sink's
location; the signing key stays in the worker's configuration and never enters history.
"""

from __future__ import annotations

from pydantic import Field

from schemas.frozen import FrozenModel
from schemas.run import SLUG


class AuditCheckpointInput(FrozenModel):
    sink: str = Field(
        min_length=1,
        max_length=1024,
        description="where signed checkpoints go: a file path (or file:// URL) of an "
        "append-only JSON Lines file, or s3://bucket/prefix (one immutable object each)",
    )
    tenant_id: str | None = Field(
        default=None,
        pattern=SLUG,
        description="only this tenant's chain; every tenant's when absent",
    )


class CheckpointedHead(FrozenModel):
    """One chain head verified and signed: what an auditor compares with the database."""

    tenant_id: str
    seq: int
    hash: str
    created_at: str
    key_id: str


class AuditCheckpointResult(FrozenModel):
    sink: str
    checkpoints: list[CheckpointedHead]
    """Tenants with an empty chain have nothing to sign and are not listed."""
    tenants_verified: int


def audit_schedule_scope(tenant_id: str | None) -> str:
    """The tenant, or `_all` (never a tenant id: those start with a letter or digit)."""
    return tenant_id or "_all"


def audit_schedule_id_for(tenant_id: str | None, name: str) -> str:
    """The Temporal Schedule that checkpoints one tenant's chain (or every tenant's)."""
    return f"charter-audit-schedule/{audit_schedule_scope(tenant_id)}/{name}"


def audit_scheduled_workflow_id_prefix(tenant_id: str | None, name: str) -> str:
    """Checkpoint runs a schedule starts: Temporal appends the scheduled time to this id."""
    return f"charter-audit-checkpoint/{audit_schedule_scope(tenant_id)}/schedule-{name}"
