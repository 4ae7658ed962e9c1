"""`charter rates set|list`: an owner sets what a currency is worth, audited; anyone else, or
anything malformed, gets one line and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.storage import Database, audit_trail
from tests.support.cli import run_main

pytestmark = pytest.mark.db


async def _rates(cli_env: Path, tenant: str) -> str:
    ran = await run_main("rates", "list", "--tenant", tenant, "--json")
    assert ran.code == 0, ran.output
    return ran.out


async def test_an_owner_sets_a_rate_and_it_is_audited(
    cli_env: Path, db: Database, tenant: str
) -> None:
    ran = await run_main(
        "rates",
        "set",
        "CHF",
        "1.1325",
        "--source",
        "treasury",
        "--as-of",
        "2026-12-01T16:00:00Z",
        "--tenant",
        tenant,
        "--as",
        "maya",
    )
    assert ran.code == 0, ran.output
    assert "1 CHF = 1.1325 USD (treasury, 2026-12-01T16:00:00+00:00)" in ran.out
    assert '"currency": "CHF"' in await _rates(cli_env, tenant)
    async with db.tenant(tenant) as conn:
        kinds = [(e.kind, e.actor) async for e in audit_trail.entries(conn, tenant)]
    assert ("exchange_rate_set", "member:maya") in kinds


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["CHF", "1.13", "--as", "sam"], "'sam' is not an active owner"),
        (["CHF", "lots", "--as", "maya"], "rate 'lots' is not a number"),
        (["CHF", "-1", "--as", "maya"], "rate: Input should be greater than 0"),
        (["chf", "1.1", "--as", "maya"], "currency: String should match pattern"),
        (["USD", "1", "--as", "maya"], "USD is quoted in itself"),
        (["CHF", "1.1", "--as-of", "soon", "--as", "maya"], "--as-of 'soon' is not an ISO 8601"),
        (["CHF", "1.1", "--as-of", "2999-01-01", "--as", "maya"], "is in the future"),
    ],
)
async def test_a_rate_refused_is_one_line_and_changes_nothing(
    cli_env: Path, tenant: str, argv: list[str], refusal: str
) -> None:
    before = await _rates(cli_env, tenant)
    ran = await run_main("rates", "set", *argv, "--source", "x", "--tenant", tenant)
    assert ran.code == 2 and refusal in ran.output, ran.output
    assert len(ran.output.strip().splitlines()) == 1, ran.output
    assert await _rates(cli_env, tenant) == before
