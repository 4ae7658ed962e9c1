"""Group commit: concurrent stand-alone appends of one tenant share one transaction.

A tenant's appends are serialised by its head row lock, held until commit, so one busy
tenant appending in separate transactions gets one commit (one WAL flush) per entry at
best. The group committer queues the appends that arrive while a tenant's previous batch is
committing and writes them together: one transaction, one round trip, one flush for the
whole batch. No timer: a lone append is flushed at once; batches form only under load.

Use it only for an entry that needs no other write in the same transaction (an
observation, a proposal, a reminder, the end of a run). An entry that must commit or roll
back together with other work (a verdict with its proposal row, an action result with the
action row) uses `audit_trail.append` in that transaction. Every caller waits for its own commit:
a failed batch fails every append in it, and nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from charter.storage import audit_trail
from charter.storage.audit_trail import MAX_BATCH, AuditEvent
from charter.storage.db import Database, valid_tenant
from schemas import AuditHead

_Waiter = tuple[AuditEvent, "asyncio.Future[AuditHead]"]


class GroupCommitter:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: dict[str, list[_Waiter]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    async def append(
        self,
        tenant_id: str,
        kind: str,
        snapshot: dict[str, Any],
        *,
        actor: str,
        workflow_id: str | None = None,
        run_id: str | None = None,
    ) -> AuditHead:
        """Append in the next batch of this tenant; return once that batch has committed."""
        valid_tenant(tenant_id)
        # Bad input fails here, for this caller alone, never for the batch it would join.
        event = AuditEvent(
            kind=kind,
            snapshot=audit_trail.storable(snapshot),
            actor=actor,
            workflow_id=workflow_id,
            run_id=run_id,
        )
        future: asyncio.Future[AuditHead] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(tenant_id, []).append((event, future))
        if tenant_id not in self._flushers:
            self._flushers[tenant_id] = asyncio.create_task(self._flush(tenant_id))
        # A cancelled caller does not cancel the batch: its entry may still be written.
        return await asyncio.shield(future)

    def _take(self, tenant_id: str) -> list[_Waiter]:
        pending = self._pending.get(tenant_id, [])
        batch, rest = pending[: self._max_batch], pending[self._max_batch :]
        if rest:
            self._pending[tenant_id] = rest
        else:
            self._pending.pop(tenant_id, None)
        return batch

    async def _flush(self, tenant_id: str) -> None:
        try:
            while batch := self._take(tenant_id):
                try:
                    async with self._db.tenant(tenant_id) as conn:
                        heads = await audit_trail.append_many(
                            conn, tenant_id, [e for e, _ in batch]
                        )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    raise
                for (_, future), head in zip(batch, heads, strict=True):
                    if not future.done():
                        future.set_result(head)
        finally:
            # No await between the empty _take and here: nothing can be queued unseen. Only
            # an interrupted flusher leaves waiters behind; they fail rather than hang.
            del self._flushers[tenant_id]
            for _, future in self._pending.pop(tenant_id, []):
                if not future.done():
                    future.set_exception(audit_trail.AuditWriteRefused("group commit interrupted"))


_committers: weakref.WeakKeyDictionary[Database, GroupCommitter] = weakref.WeakKeyDictionary()


def group_for(db: Database) -> GroupCommitter:
    """The group committer of this database pool (one per pool, created on first use)."""
    committer = _committers.get(db)
    if committer is None:
        committer = _committers[db] = GroupCommitter(db)
    return committer
