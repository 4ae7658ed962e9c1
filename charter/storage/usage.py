"""Token usage of the reasoners, summarised from the audit trail.

The audit trail is the record: the reason activity writes each run's usage into its
`proposed` (or `reasoning_failed`) entry, so the summary can never disagree with it.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict


class UsageSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    agent: str
    model: str
    runs: int
    requests: int
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int

    @property
    def cache_hit_ratio(self) -> float:
        """Share of prompt tokens served from the cache."""
        prompt = self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
        return self.cache_read_input_tokens / prompt if prompt else 0.0


_FIELDS = (
    "requests",
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


async def summarise(
    conn: asyncpg.Connection, tenant_id: str, since: datetime | None = None
) -> list[UsageSummary]:
    sums = ", ".join(
        f"COALESCE(sum((snapshot->'usage'->>'{f}')::bigint), 0) AS {f}" for f in _FIELDS
    )
    rows = await conn.fetch(
        f"SELECT snapshot->>'agent' AS agent, snapshot->'usage'->>'model' AS model, "
        f"count(*) AS runs, {sums} FROM charter.audit_entries WHERE tenant_id = $1 "
        "AND kind IN ('proposed', 'reasoning_failed') "
        "AND jsonb_typeof(snapshot->'usage') = 'object' "
        "AND ($2::timestamptz IS NULL OR occurred_at::timestamptz >= $2) "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        tenant_id,
        since,
    )
    return [
        UsageSummary(tenant_id=tenant_id, **{**dict(r), "agent": r["agent"] or "?"}) for r in rows
    ]
