"""The writer's encoding (pieces hashed by PostgreSQL) agrees with the verifier's, for any
snapshot, including the numbers and strings jsonb would otherwise quietly change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.audit.chain import entry_hash, verify_chain
from charter.storage import Database, audit_trail
from charter.storage.audit_trail import as_stored, encoded_pieces

pytestmark = pytest.mark.db

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
snapshots = st.dictionaries(
    text,
    st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)


@given(snapshot=snapshots, actor=text, run_id=st.none() | text)
def test_pieces_are_the_canonical_encoding(
    snapshot: dict[str, Any], actor: str, run_id: str | None
) -> None:
    fields = {
        "tenant_id": "acme",
        "kind": "observed",
        "occurred_at": "2026-01-01T00:00:00.000000+00:00",
        "workflow_id": None,
        "run_id": run_id,
        "actor": actor,
        "snapshot": as_stored(snapshot),
    }
    before_prev, before_seq, after_seq = encoded_pieces(**fields)  # type: ignore[arg-type]
    assembled = before_prev + "ab" * 32 + before_seq + "7" + after_seq
    canonical = json.dumps(
        {**fields, "prev_hash": "ab" * 32, "seq": 7},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert assembled == canonical


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(snapshot=snapshots)
async def test_database_hash_matches_independent_verifier(
    db: Database, tenant: str, snapshot: dict[str, Any]
) -> None:
    async with db.tenant(tenant) as conn:
        head = await audit_trail.append(conn, tenant, "observed", snapshot, actor="agent:é")
        entries = [e async for e in audit_trail.entries(conn, tenant)]
    last = entries[-1]
    assert (last.seq, last.hash) == (head.seq, head.hash)
    assert entry_hash(**last.model_dump(exclude={"hash"})) == head.hash
    assert verify_chain(tenant, entries).ok


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": "nul\x00byte"}])
async def test_unstorable_snapshot_is_refused_loudly(
    db: Database, tenant: str, bad: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        async with db.tenant(tenant) as conn:
            await audit_trail.append(conn, tenant, "observed", bad, actor="test")
