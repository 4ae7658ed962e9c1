"""The audit chain, independent of the database: hashing and verification.

Each entry's hash covers its own fields and the previous entry's hash for the same
tenant, over a canonical JSON encoding (sorted keys, no whitespace, UTF-8). `verify_chain`
needs nothing but the entries (and optionally anchors: heads recorded outside PostgreSQL),
so an auditor can re-run it on an export without trusting PostgreSQL.

This module deliberately shares no encoding or hashing code with the writer
(`charter.storage.audit` encodes, PostgreSQL hashes): a bug in one is caught by the other.
It uses only the standard library and pydantic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64

#: Sorted keys, no whitespace, UTF-8 as is: one encoder for every entry (`json.dumps` with
#: these options builds the same encoder on every call).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


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


class MalformedEntry(BaseModel):
    """A stored entry that cannot even be read as an entry (a snapshot that is not a JSON
    object, a field of the wrong type): reported with its place, never a traceback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    seq: int
    problem: str


class Anchor(BaseModel):
    """A (seq, hash) pair of a tenant's chain recorded outside PostgreSQL.

    Sources: a signed checkpoint (`charter audit checkpoint`), or a run's final audit head
    in its Temporal result (`AgentRunResult.audit_head`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    seq: int
    hash: str
    source: str


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
    return hashlib.sha256(_CANONICAL.encode(body).encode("utf-8")).hexdigest()


class ChainReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    entries: int
    head_seq: int
    head_hash: str
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None
    anchors_checked: int = 0
    pending_actions: list[str] = []
    """Idempotency keys of actions whose intent is recorded but whose result is not (yet)."""


#: What closes an intent: the connector's result, its refusal (nothing was written), or an
#: operator's reconciliation of an intent whose outcome was checked in the books.
CLOSING_KINDS = frozenset({"action_result", "action_refused", "action_reconciled"})


def _track_action(pending: dict[str, None], entry: AuditEntry) -> None:
    key = entry.snapshot.get("idempotency_key")
    if not isinstance(key, str):
        return
    if entry.kind == "action_intent":
        pending.setdefault(key, None)
    elif entry.kind in CLOSING_KINDS:
        pending.pop(key, None)


def pending_actions(entries: Iterable[AuditEntry]) -> list[str]:
    """Write-ahead bookkeeping: intents without a result, in the order they were recorded."""
    pending: dict[str, None] = {}
    for entry in entries:
        _track_action(pending, entry)
    return list(pending)


def verify_chain(
    tenant_id: str,
    entries: Iterable[AuditEntry | MalformedEntry],
    anchors: Iterable[Anchor] = (),
) -> ChainReport:
    """Recompute the chain in order; name the first entry that does not fit.

    Anchors catch what the chain alone cannot: a rewrite that recomputed every hash after
    the altered entry. An anchor whose seq is past the end catches a truncated tail.
    """
    by_seq: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        if anchor.tenant_id != tenant_id:
            raise ValueError(f"anchor {anchor.source} belongs to tenant {anchor.tenant_id!r}")
        by_seq.setdefault(anchor.seq, []).append(anchor)
    prev_hash, expected_seq, count, checked = GENESIS, 1, 0, 0
    last_good_anchor = 0
    pending: dict[str, None] = {}

    def bad(seq: int, problem: str) -> ChainReport:
        return ChainReport(
            tenant_id=tenant_id,
            entries=count,
            head_seq=expected_seq - 1,
            head_hash=prev_hash,
            ok=False,
            first_bad_seq=seq,
            problem=problem,
            anchors_checked=checked,
            pending_actions=list(pending),
        )

    for entry in entries:
        if entry.tenant_id != tenant_id:
            return bad(entry.seq, f"entry belongs to tenant {entry.tenant_id!r}")
        if entry.seq > expected_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing (next found: {entry.seq})")
        if entry.seq != expected_seq:
            return bad(entry.seq, f"expected seq {expected_seq}, found {entry.seq} (reordered)")
        if isinstance(entry, MalformedEntry):
            return bad(entry.seq, f"entry cannot be read: {entry.problem}")
        if entry.prev_hash != prev_hash:
            return bad(entry.seq, "prev_hash does not match the previous entry's hash")
        try:
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
        except (ValueError, TypeError, RecursionError) as exc:  # NaN, a lone surrogate, ...
            return bad(entry.seq, f"entry cannot be encoded: {type(exc).__name__}: {exc}"[:300])
        if recomputed != entry.hash:
            return bad(entry.seq, "content does not match its hash (entry was altered)")
        for anchor in by_seq.pop(entry.seq, []):
            if anchor.hash != entry.hash:
                return bad(
                    entry.seq,
                    f"hash differs from {anchor.source}: the chain was rewritten and "
                    f"recomputed at or before seq {entry.seq} (after seq {last_good_anchor})",
                )
            checked += 1
            last_good_anchor = entry.seq
        _track_action(pending, entry)
        prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    if by_seq:
        missing = min(by_seq)
        return bad(
            missing,
            f"{by_seq[missing][0].source} records seq {missing}, but the chain ends at "
            f"seq {expected_seq - 1} (entries removed from the tail)",
        )
    return ChainReport(
        tenant_id=tenant_id,
        entries=count,
        head_seq=expected_seq - 1,
        head_hash=prev_hash,
        ok=True,
        anchors_checked=checked,
        pending_actions=list(pending),
    )
