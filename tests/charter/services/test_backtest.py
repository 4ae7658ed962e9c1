"""Backtest on a history recorded by real runs: per decision, what a candidate would change."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.worker import Worker

from charter.demo.seed import constitution_source
from charter.services.adoption import run_backtest
from charter.storage import Database
from schemas import Decision
from tests.support.running import start, until_stage
from tests.support.signing import decide

BLUEBIRD_RULE = """
  - id: allow-bluebird
    title: Pay Bluebird Design Studio up to $2,500
    applies_to: [schedule_payment]
    when: counterparty == "Bluebird Design Studio" && amount <= 2500.0
    effect: allow
"""


def candidate() -> str:
    text = constitution_source("acme")
    text = text.replace(
        "vendor.verified && amount <= 5000.0", "vendor.verified && amount <= 3000.0"
    )
    return text + BLUEBIRD_RULE


async def _record_history(client: Client, db: Database, tenant: str) -> datetime:
    """Three real runs: autos and a deny; an approval; a rejection. Returns a mid point."""
    first = await start(client, tenant, "payables", focus=["INV-1041", "INV-1042", "INV-1039"])
    await first.result()
    mid = datetime.now(UTC)
    second = await start(client, tenant, "payables", focus=["INV-1043"])
    await until_stage(second, "awaiting_decision")
    await decide(second, Decision(proposal_id="p1", approver="maya", outcome="approve"))
    await second.result()
    third = await start(client, tenant, "payables", focus=["INV-1045"])
    await until_stage(third, "awaiting_decision")
    await decide(third, Decision(proposal_id="p1", approver="sam", outcome="reject"))
    await third.result()
    return mid


async def test_backtest_reports_what_would_change(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    mid = await _record_history(client, db, tenant)
    report = await run_backtest(db, tenant, candidate())
    by_ref = {c.reference: c for c in report.cases}
    assert set(by_ref) == {"INV-1041", "INV-1042", "INV-1039", "INV-1043", "INV-1045"}
    assert by_ref["INV-1041"].change == "auto → escalated"  # $3,412.18 above the new $3,000
    assert by_ref["INV-1043"].change == "escalated → auto"  # the new Bluebird rule
    assert by_ref["INV-1043"].candidate_rules == ["allow-bluebird"]
    assert by_ref["INV-1043"].human == "approved"
    for unchanged in ("INV-1042", "INV-1039", "INV-1045"):
        assert by_ref[unchanged].change == "unchanged", by_ref[unchanged]
    assert by_ref["INV-1039"].recorded == "denied"
    assert by_ref["INV-1045"].human == "rejected"
    assert by_ref["INV-1045"].candidate_causes == ["below_confidence"]
    assert report.summary() == {"auto → escalated": 1, "escalated → auto": 1, "unchanged": 3}
    assert report.skipped == 0

    recent = await run_backtest(db, tenant, candidate(), since=mid)
    assert {c.reference for c in recent.cases} == {"INV-1043", "INV-1045"}


async def test_backtest_of_the_current_law_changes_nothing(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    await _record_history(client, db, tenant)
    report = await run_backtest(db, tenant, constitution_source("acme"))
    assert report.summary() == {"unchanged": 5}


async def test_backtest_replays_limits_in_history_order(
    client: Client, worker: Worker, db: Database, tenant: str
) -> None:
    """Two payments executed on their own ($3,412.18, then $1,440.00); a candidate with a
    $4,000 daily autonomous cap lets the first go and holds the second, in that order."""
    run = await start(client, tenant, "payables", focus=["INV-1041", "INV-1042"])
    await run.result()
    text = constitution_source("acme").replace("amount: 7000", "amount: 4000")
    report = await run_backtest(db, tenant, text)
    by_ref = {c.reference: c for c in report.cases}
    first, second = by_ref["INV-1041"], by_ref["INV-1042"]
    assert (first.recorded, first.candidate) == ("auto", "auto")
    assert (
        second.recorded == "auto"
        and second.candidate == "escalated"
        and second.candidate_causes == ["limit_exceeded"]
    )
