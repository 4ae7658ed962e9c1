"""The audit chain, independent of the database: hashing and verification.

Each entry's hash covers its own fields and the previous entry's hash for the same
tenant, over a canonical JSON encoding (sorted keys, no whitespace, UTF-8). `verify_chain`
needs nothing but the entries (and optionally anchors: heads recorded outside PostgreSQL),
so an auditor can re-run it on an export without trusting PostgreSQL.

This module deliberately shares no encoding or hashing code with the writer
(`charter.storage.audit_trail` encodes, PostgreSQL hashes): a bug in one is caught by the other.
It uses only the standard library and pydantic.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64

#: Sorted keys, no whitespace, UTF-8 as is: one encoder for every entry (`json.dumps` with
#: these options builds the same encoder on every call).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
#: The same options, as the C encoder `_CANONICAL.encode` builds on each call, built once.
#: Without the circular-reference markers: a snapshot parsed from JSON text cannot refer to
#: itself, and deep nesting still raises RecursionError. Falls back to `_CANONICAL` where
#: the C accelerator is missing.
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_SNAPSHOT = (
    _c_encoder(
        None, _CANONICAL.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
    if _c_encoder is not None
    else None
)
_string = json.encoder.encode_basestring


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


class ChainEntry(NamedTuple):
    """An entry as read for verification: the fields of `AuditEntry`, already checked for
    their types, without building a model per entry (reading 100,000 entries as models
    cost twice as long as recomputing their hashes)."""

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


def typed_entry(
    tenant_id: object,
    seq: object,
    kind: object,
    occurred_at: object,
    workflow_id: object,
    run_id: object,
    actor: object,
    snapshot: object,
    prev_hash: object,
    hash_: object,
) -> ChainEntry | None:
    """The fields as a `ChainEntry` if every one has its type (a JSON object for the
    snapshot), else None: the reader then finds out exactly what is wrong."""
    if (
        type(snapshot) is dict
        and type(tenant_id) is str
        and type(seq) is int
        and type(kind) is str
        and type(occurred_at) is str
        and (workflow_id is None or type(workflow_id) is str)
        and (run_id is None or type(run_id) is str)
        and type(actor) is str
        and type(prev_hash) is str
        and type(hash_) is str
    ):
        return ChainEntry(
            tenant_id,
            seq,
            kind,
            occurred_at,
            workflow_id,
            run_id,
            actor,
            snapshot,
            prev_hash,
            hash_,
        )
    return None


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
    text = _canonical(
        tenant_id, seq, kind, occurred_at, workflow_id, run_id, actor, snapshot, prev_hash
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(
    tenant_id: Any,
    seq: Any,
    kind: Any,
    occurred_at: Any,
    workflow_id: Any,
    run_id: Any,
    actor: Any,
    snapshot: Any,
    prev_hash: Any,
) -> str:
    """The entry's canonical JSON: exactly `_CANONICAL.encode` of the nine fields as one
    object. When the fields have their usual types (strings, an int seq, a dict snapshot),
    the fixed outer object is written out here in sorted key order and only the snapshot
    goes through the encoder, which halves the cost of a hash."""
    if (
        _SNAPSHOT is not None
        and type(seq) is int
        and type(snapshot) is dict
        and type(tenant_id) is str
        and type(kind) is str
        and type(occurred_at) is str
        and type(actor) is str
        and type(prev_hash) is str
        and (workflow_id is None or type(workflow_id) is str)
        and (run_id is None or type(run_id) is str)
    ):
        return (
            '{"actor":'
            + _string(actor)
            + ',"kind":'
            + _string(kind)
            + ',"occurred_at":'
            + _string(occurred_at)
            + ',"prev_hash":'
            + _string(prev_hash)
            + ',"run_id":'
            + ("null" if run_id is None else _string(run_id))
            + ',"seq":'
            + int.__repr__(seq)
            + ',"snapshot":'
            + "".join(_SNAPSHOT(snapshot, 0))
            + ',"tenant_id":'
            + _string(tenant_id)
            + ',"workflow_id":'
            + ("null" if workflow_id is None else _string(workflow_id))
            + "}"
        )
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
    return _CANONICAL.encode(body)


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


def _track_action(pending: dict[str, None], entry: AuditEntry | ChainEntry) -> None:
    key = entry.snapshot.get("idempotency_key")
    if isinstance(key, str):
        track_action(pending, entry.kind, key)


def track_action(pending: dict[str, None], kind: str, key: str) -> None:
    """One entry's effect on the intents still open, in the order they were recorded."""
    if kind == "action_intent":
        pending.setdefault(key, None)
    elif kind in CLOSING_KINDS:
        pending.pop(key, None)


def pending_actions(entries: Iterable[AuditEntry]) -> list[str]:
    """Write-ahead bookkeeping: intents without a result, in the order they were recorded."""
    pending: dict[str, None] = {}
    for entry in entries:
        _track_action(pending, entry)
    return list(pending)


def verify_chain(
    tenant_id: str,
    entries: Iterable[AuditEntry | ChainEntry | MalformedEntry],
    anchors: Iterable[Anchor] = (),
) -> ChainReport:
    """Recompute the chain in order; name the first entry that does not fit.

    Anchors catch what the chain alone cannot: a rewrite that recomputed every hash after
    the altered entry. An anchor whose seq is past the end catches a truncated tail.
    """
    verifier = ChainVerifier(tenant_id, anchors)
    for entry in entries:
        if (report := verifier.add(entry)) is not None:
            return report
    return verifier.finish()


class ChainRange(NamedTuple):
    """What a range of a chain verified on its own (`ChainVerifier(..., first_seq=...)`)
    hands to the verifier of everything before it: how it links at both ends, what it
    checked, and the actions it opened and closed, in order, as (kind, idempotency key)."""

    first_seq: int
    linked_to: str
    last_seq: int
    last_hash: str
    entries: int
    anchors_checked: int
    last_good_anchor: int
    actions: list[tuple[str, str]]


class ChainVerifier:
    """`verify_chain` one entry at a time, so a caller reading the chain in batches can
    check each batch while the next one is on its way. `add` returns the report naming
    the first entry that does not fit (then stop); `finish` reports the whole chain.

    With `first_seq`, it verifies a range of the chain that starts there, taking the first
    entry's `prev_hash` as given (`linked_to`): `joined` then links that range onto the
    verifier of everything before it, as if it had added the range's entries itself."""

    def __init__(
        self, tenant_id: str, anchors: Iterable[Anchor] = (), *, first_seq: int = 1
    ) -> None:
        self.tenant_id = tenant_id
        self._by_seq: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            if anchor.tenant_id != tenant_id:
                raise ValueError(f"anchor {anchor.source} belongs to tenant {anchor.tenant_id!r}")
            self._by_seq.setdefault(anchor.seq, []).append(anchor)
        self._first_seq = first_seq
        self._prev_hash: str | None = GENESIS if first_seq == 1 else None
        self.linked_to = self._prev_hash
        self._expected_seq, self._count, self._checked = first_seq, 0, 0
        self._last_good_anchor = 0
        self._pending: dict[str, None] = {}

    def as_range(self, actions: list[tuple[str, str]]) -> ChainRange | None:
        """This verifier's entries as a range for `joined` (None if it saw none)."""
        if self._count == 0 or self._prev_hash is None or self.linked_to is None:
            return None
        return ChainRange(
            self._first_seq,
            self.linked_to,
            self._expected_seq - 1,
            self._prev_hash,
            self._count,
            self._checked,
            self._last_good_anchor,
            actions,
        )

    def joined(self, part: ChainRange) -> bool:
        """Continue with a range verified apart, if it starts where this chain ends and
        links to its head hash; False (nothing changed) if it does not."""
        if part.first_seq != self._expected_seq or part.linked_to != self._prev_hash:
            return False
        for seq in [s for s in self._by_seq if part.first_seq <= s <= part.last_seq]:
            del self._by_seq[seq]  # the range checked them: every seq in it was present
        for kind, key in part.actions:
            track_action(self._pending, kind, key)
        self._prev_hash, self._expected_seq = part.last_hash, part.last_seq + 1
        self._count += part.entries
        self._checked += part.anchors_checked
        self._last_good_anchor = part.last_good_anchor or self._last_good_anchor
        return True

    def _bad(self, seq: int, problem: str) -> ChainReport:
        return ChainReport(
            tenant_id=self.tenant_id,
            entries=self._count,
            head_seq=self._expected_seq - 1,
            head_hash=self._prev_hash or "",
            ok=False,
            first_bad_seq=seq,
            problem=problem,
            anchors_checked=self._checked,
            pending_actions=list(self._pending),
        )

    def add(self, entry: AuditEntry | ChainEntry | MalformedEntry) -> ChainReport | None:
        expected_seq = self._expected_seq
        if entry.tenant_id != self.tenant_id:
            return self._bad(entry.seq, f"entry belongs to tenant {entry.tenant_id!r}")
        if entry.seq > expected_seq:
            return self._bad(
                expected_seq, f"entry {expected_seq} is missing (next found: {entry.seq})"
            )
        if entry.seq != expected_seq:
            return self._bad(
                entry.seq, f"expected seq {expected_seq}, found {entry.seq} (reordered)"
            )
        if isinstance(entry, MalformedEntry):
            return self._bad(entry.seq, f"entry cannot be read: {entry.problem}")
        if self._prev_hash is None:  # a range's first entry: `joined` checks this link
            self._prev_hash = self.linked_to = entry.prev_hash
        if entry.prev_hash != self._prev_hash:
            return self._bad(entry.seq, "prev_hash does not match the previous entry's hash")
        try:
            text = _canonical(
                entry.tenant_id,
                entry.seq,
                entry.kind,
                entry.occurred_at,
                entry.workflow_id,
                entry.run_id,
                entry.actor,
                entry.snapshot,
                entry.prev_hash,
            )
            recomputed = hashlib.sha256(text.encode("utf-8")).hexdigest()
        except (ValueError, TypeError, RecursionError) as exc:  # NaN, a lone surrogate, ...
            return self._bad(
                entry.seq, f"entry cannot be encoded: {type(exc).__name__}: {exc}"[:300]
            )
        if recomputed != entry.hash:
            return self._bad(entry.seq, "content does not match its hash (entry was altered)")
        if self._by_seq:
            for anchor in self._by_seq.pop(entry.seq, []):
                if anchor.hash != entry.hash:
                    return self._bad(
                        entry.seq,
                        f"hash differs from {anchor.source}: the chain was rewritten and "
                        f"recomputed at or before seq {entry.seq} "
                        f"(after seq {self._last_good_anchor})",
                    )
                self._checked += 1
                self._last_good_anchor = entry.seq
        _track_action(self._pending, entry)
        self._prev_hash, self._expected_seq = entry.hash, expected_seq + 1
        self._count += 1
        return None

    def finish(self) -> ChainReport:
        if self._by_seq:
            missing = min(self._by_seq)
            return self._bad(
                missing,
                f"{self._by_seq[missing][0].source} records seq {missing}, but the chain ends "
                f"at seq {self._expected_seq - 1} (entries removed from the tail)",
            )
        return ChainReport(
            tenant_id=self.tenant_id,
            entries=self._count,
            head_seq=self._expected_seq - 1,
            head_hash=self._prev_hash or "",
            ok=True,
            anchors_checked=self._checked,
            pending_actions=list(self._pending),
        )
