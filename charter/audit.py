"""The audit chain, independent of the database: hashing and verification.

Each entry's hash covers its own fields and the previous entry's hash for the same
tenant, over a canonical JSON encoding. `verify_chain` needs nothing but the entries, so
an auditor can re-run it on an export without trusting PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from charter.canonical import canonical_json, sha256_hex

GENESIS = "0" * 64


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    seq: int
    kind: str
    occurred_at: str
    workflow_id: str | None
    run_id: str | None
    actor: str
    snapshot: dict[str, Any]
    prev_hash: str
    hash: str


def entry_hash(
    *,
    tenant_id: str,
    seq: int,
    kind: str,
    occurred_at: str,
    workflow_id: str | None,
    run_id: str | None,
    actor: str,
    snapshot: dict[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "tenant_id": tenant_id,
        "seq": seq,
        "kind": kind,
        "occurred_at": occurred_at,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "actor": actor,
        "snapshot": snapshot,
        "prev_hash": prev_hash,
    }
    return sha256_hex(canonical_json(body))


class ChainReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    entries: int
    head_seq: int
    head_hash: str
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(tenant_id: str, entries: Iterable[AuditEntry]) -> ChainReport:
    """Recompute the chain in order; name the first entry that does not fit."""
    prev_hash, expected_seq, count = GENESIS, 1, 0

    def bad(seq: int, problem: str) -> ChainReport:
        return ChainReport(
            tenant_id=tenant_id,
            entries=count,
            head_seq=expected_seq - 1,
            head_hash=prev_hash,
            ok=False,
            first_bad_seq=seq,
            problem=problem,
        )

    for entry in entries:
        if entry.tenant_id != tenant_id:
            return bad(entry.seq, f"entry belongs to tenant {entry.tenant_id!r}")
        if entry.seq != expected_seq:
            return bad(
                entry.seq, f"expected seq {expected_seq}, found {entry.seq} (gap or reorder)"
            )
        if entry.prev_hash != prev_hash:
            return bad(entry.seq, "prev_hash does not match the previous entry's hash")
        recomputed = entry_hash(
            tenant_id=entry.tenant_id,
            seq=entry.seq,
            kind=entry.kind,
            occurred_at=entry.occurred_at,
            workflow_id=entry.workflow_id,
            run_id=entry.run_id,
            actor=entry.actor,
            snapshot=entry.snapshot,
            prev_hash=entry.prev_hash,
        )
        if recomputed != entry.hash:
            return bad(entry.seq, "content does not match its hash (entry was altered)")
        prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    return ChainReport(
        tenant_id=tenant_id,
        entries=count,
        head_seq=expected_seq - 1,
        head_hash=prev_hash,
        ok=True,
    )
