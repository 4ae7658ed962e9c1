"""Declared limits and `spend.*` facts: loading, static checks, and the gate's judgement."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from charter.governance import gate
from charter.governance.amendments import AmendmentRefused, _check_only_adds
from charter.governance.constitution import ConstitutionError, load_yaml
from charter.governance.spend import totals
from schemas import SpendSnapshot, SpendTotals
from tests.support.constitutions import OBSERVED_AT, constitution, observation, proposal

LAW = """
action_types:
  schedule_payment: {reversible: true, spends: true}
  pause_campaign: {reversible: true}
rules:
  - id: allow-small
    title: Pay up to $5,000
    applies_to: [schedule_payment]
    when: amount <= 5000.0
    effect: allow
  - id: escalate-vendor-month
    title: More than $10,000 to one payee in 30 days goes to a human
    applies_to: [schedule_payment]
    when: spend.counterparty("P30D") + amount > 10000.0
    effect: escalate
limits:
  - id: autonomous-daily
    title: At most $5,000 a day without a human
    scope: autonomous
    window: P1D
    amount: 5000
  - id: payee-monthly
    title: Never more than $20,000 to one payee in 30 days
    scope: counterparty
    window: P30D
    amount: 20000
    on_exceed: deny
"""


def snapshot(autonomous: str = "0", payee: str = "0") -> SpendSnapshot:
    totals = SpendTotals(
        total=Decimal(payee),
        autonomous=Decimal(autonomous),
        counterparty={"vendor:v1": Decimal(payee)},
    )
    return SpendSnapshot(as_of=OBSERVED_AT, windows={"P1D": totals, "P7D": totals, "P30D": totals})


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ('spend.total("P2D") > 1.0', "unknown spend window(s) P2D"),
        ('spend.vendor("P1D") > 1.0', "unknown function(s) vendor"),
        ("spend.total(reference) > 1.0", "literal window"),
        ('total("P1D") > 1.0', "literal window"),
    ],
)
def test_spend_facts_are_checked_statically(fragment: str, message: str) -> None:
    text = LAW.replace('spend.counterparty("P30D") + amount > 10000.0', fragment)
    with pytest.raises(ConstitutionError) as raised:
        load_yaml(text)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("window: P1D", "window: P2D"), "limits.0.window"),
        (("scope: autonomous", "scope: vendor"), "limits.0.scope"),
        (("    on_exceed: deny\n", ""), "needs approvals_may_exceed: true"),
        (
            (
                "schedule_payment: {reversible: true, spends: true}",
                "schedule_payment: {reversible: true}",
            ),
            "spends: true",
        ),
    ],
)
def test_limits_are_checked_when_loaded(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConstitutionError) as raised:
        load_yaml(LAW.replace(*change))
    assert message in str(raised.value)


def test_a_document_without_limits_keeps_its_content_hash() -> None:
    without = constitution(LAW.split("limits:")[0])
    assert without.document.limits is None
    assert "limits" not in without.document.model_dump(mode="json", exclude_none=True)


def test_spend_facts_come_from_the_ledger_snapshot() -> None:
    c = constitution(LAW)
    pay = proposal(c, amount=Decimal("2300.00"), citations=["allow-small"])
    assert gate.evaluate(c, pay, observation(spend=snapshot(payee="7000"))).outcome == "execute"
    held = gate.evaluate(c, pay, observation(spend=snapshot(payee="7700.01")))
    assert held.causes == ["escalation_rule", "citation_mismatch"]
    assert [m.rule_id for m in held.matched] == ["allow-small", "escalate-vendor-month"]
    assert '"P30D": 7700.01' in held.matched[1].why


def test_without_a_ledger_snapshot_a_spend_rule_fails_closed() -> None:
    c = constitution(LAW)
    verdict = gate.evaluate(c, proposal(c, amount=Decimal("100.00")), observation())
    assert verdict.outcome == "escalate" and "rule_error" in verdict.causes


def test_the_daily_autonomous_cap_escalates_with_what_was_spent() -> None:
    c = constitution(LAW)
    pay = proposal(c, amount=Decimal("900.00"), citations=["allow-small"])
    assert (
        gate.evaluate(c, pay, observation(spend=snapshot(autonomous="4100"))).outcome == "execute"
    )
    verdict = gate.evaluate(c, pay, observation(spend=snapshot(autonomous="4100.01")))
    assert (verdict.outcome, verdict.causes) == ("escalate", ["limit_exceeded"])
    [breach] = verdict.limits
    assert (breach.limit_id, breach.window, breach.spent, breach.amount, breach.limit) == (
        "autonomous-daily",
        "P1D",
        Decimal("4100.01"),
        Decimal("900.00"),
        Decimal("5000"),
    )
    assert "autonomous-daily" in verdict.explanation and "4100.01" in verdict.explanation


def test_earlier_proposals_of_the_run_count_against_a_limit() -> None:
    c = constitution(LAW)
    pays = [proposal(c, proposal_id=f"p{n}", amount=Decimal("900.00")) for n in range(1, 7)]
    seen = observation(spend=snapshot())
    outcomes = [gate.evaluate(c, p, seen, pays[:n]).outcome for n, p in enumerate(pays)]
    assert outcomes == ["execute"] * 5 + ["escalate"]


def test_a_deny_limit_denies_even_what_a_human_would_approve() -> None:
    c = constitution(LAW)
    big = proposal(c, amount=Decimal("9000.00"))  # escalates anyway (above $5,000)
    verdict = gate.evaluate(c, big, observation(spend=snapshot(payee="11000.01")))
    assert (verdict.outcome, verdict.causes) == ("deny", ["limit_exceeded"])


def test_an_amendment_cannot_raise_a_limit() -> None:
    before = load_yaml(LAW)
    raised = load_yaml(LAW.replace("amount: 5000", "amount: 50000"))
    with pytest.raises(AmendmentRefused, match="cannot change a limit"):
        _check_only_adds(before, raised)


def test_windows_end_at_their_edge() -> None:
    """Rolling windows in absolute time (no time zone): an amount reserved exactly one
    window ago has left the window, one a microsecond later has not."""
    now = OBSERVED_AT
    row = {"amount": Decimal("10"), "action": "a", "payee": "p", "agent": "g", "autonomous": True}
    rows = [
        {**row, "at": now - timedelta(days=1)},
        {**row, "at": now - timedelta(days=1) + timedelta(microseconds=1)},
        {**row, "at": now - timedelta(days=7)},
    ]
    sums = totals(rows, now)
    assert sums["P1D"].autonomous == Decimal("10")
    assert sums["P7D"].autonomous == Decimal("20")
    assert sums["P30D"].autonomous == Decimal("30")
