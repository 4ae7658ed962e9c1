"""Verify the audit chains and append a signed checkpoint of their heads to a sink.

The `AuditCheckpoint` workflow's only activity, run on a schedule so that chain heads leave
PostgreSQL regularly for a place its administrators cannot write. The input names the sink
and the tenant; the key comes from the worker (`Deps.audit_signing`).
"""

from __future__ import annotations

from temporalio import activity

from activities._deps import Deps
from charter.audit.checkpoints import CheckpointError
from charter.audit.sinks import SinkLocationInvalid, SinkUnavailable, sink_for
from charter.services.audit_verification import checkpoint, describe_broken
from charter.temporal.errors import CatalogueError
from schemas import AuditCheckpointInput, AuditCheckpointResult, CheckpointedHead
from schemas.errors import ErrorType


class CheckpointActivities:
    def __init__(self, deps: Deps) -> None:
        self._db = deps.db
        self._keys = deps.audit_signing

    @activity.defn(name="checkpoint_audit")
    async def checkpoint_audit(self, req: AuditCheckpointInput) -> AuditCheckpointResult:
        try:
            sink = sink_for(req.sink)
        except SinkLocationInvalid as exc:
            raise CatalogueError(ErrorType.INVALID_ACTIVITY_INPUT, str(exc)) from None
        if self._keys is None:
            raise CatalogueError(
                ErrorType.AUDIT_CHECKPOINT_INVALID,
                "this worker has no audit signing key configured",
            )
        tenants = [req.tenant_id] if req.tenant_id else None
        try:
            run = await checkpoint(self._db, sink, self._keys, tenants)
        except CheckpointError as exc:
            raise CatalogueError(ErrorType.AUDIT_CHECKPOINT_INVALID, str(exc)) from None
        except SinkUnavailable as exc:
            raise CatalogueError(ErrorType.AUDIT_SINK_UNAVAILABLE, str(exc)) from None
        if run.broken:
            # The chains that verify are signed already; the broken ones fail the run so that
            # someone looks, and no retry can make them verify.
            raise CatalogueError(
                ErrorType.AUDIT_CHAIN_BROKEN,
                f"audit chain broken: {describe_broken(run.broken)}",
                *[(r.tenant_id, r.first_bad_seq) for r in run.broken],
            )
        return AuditCheckpointResult(
            sink=sink.location,
            tenants_verified=len(run.reports),
            # The heads only: the signatures are in the sink, where an auditor reads them.
            checkpoints=[
                CheckpointedHead.model_validate(c.model_dump(exclude={"signature"}))
                for c in run.signed
            ],
        )
