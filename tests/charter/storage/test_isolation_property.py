"""Property: whatever rows exist and whatever a tenant asks, it only gets its own rows."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.storage import Database
from tests.support.catalog import app_tables
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.db

PREDICATES = [
    "true",
    "tenant_id = $1",
    "tenant_id <> $1",
    "tenant_id IN ($1, $2)",
    "tenant_id::text LIKE $1 || '%' OR true",
    "EXISTS (SELECT 1 FROM charter.tenants t WHERE t.tenant_id = $1)",
    "tenant_id = (SELECT max(tenant_id) FROM charter.vendors WHERE tenant_id IN ($1, $2))",
    "x.ctid IN (SELECT ctid FROM {table} WHERE tenant_id = $2)",
    "row_to_json(x)::text LIKE '%' || $1 || '%'",
]

names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@pytest.fixture(scope="module")
async def tenants(db: Database, admin_dsn: str) -> list[str]:
    admin = await asyncpg.connect(admin_dsn)
    try:
        return [await new_tenant(db, admin, admin_dsn) for _ in range(3)]
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def tables(admin_dsn: str, tenants: list[str]) -> list[str]:
    admin = await asyncpg.connect(admin_dsn)
    try:
        return await app_tables(admin)
    finally:
        await admin.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_no_query_returns_another_tenants_row(
    db: Database, tenants: list[str], tables: list[str], data: st.DataObject
) -> None:
    # Random new rows, each written by its own tenant.
    for owner, name in data.draw(
        st.lists(st.tuples(st.sampled_from(tenants), names), max_size=4), label="rows"
    ):
        async with db.tenant(owner) as conn:
            await conn.execute(
                "INSERT INTO charter.vendors (tenant_id, vendor_id, name) VALUES ($1, $2, $3)",
                owner,
                f"v-{uuid.uuid4().hex[:8]}",
                name,
            )
    me = data.draw(st.sampled_from(tenants), label="acting tenant")
    table = data.draw(st.sampled_from(tables), label="table")
    predicate = data.draw(st.sampled_from(PREDICATES), label="predicate").format(table=table)
    first = data.draw(st.sampled_from([*tenants, ""]), label="$1")
    second = data.draw(st.sampled_from(tenants), label="$2")
    predicate = predicate.replace("$1", "p.p1").replace("$2", "p.p2")
    sql = (
        f"SELECT x.tenant_id FROM {table} x, (SELECT $1::text AS p1, $2::text AS p2) p "
        f"WHERE {predicate}"
    )
    async with db.tenant(me) as conn:
        rows = await conn.fetch(sql, first, second)
    assert {r["tenant_id"] for r in rows} <= {me}, sql
