"""Amendments: narrow allow rules learnt from an approval, never a loosening of the law."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from charter.governance import gate
from charter.governance.amendments import AmendmentRefused, amend
from charter.governance.constitution import content_hash
from schemas import AmendmentRequest, Constitution, ConstitutionDocument, Proposal, Verdict
from tests.support.constitutions import BASE, OBSERVED_AT, constitution, observation, proposal

# A constitution where an unverified vendor is outside bounds.
TEXT = BASE.replace("when: amount <= 5000.0", "when: amount <= 5000.0 && vendor.verified")


def _escalated(c: Constitution, **kw: object) -> tuple[Proposal, Verdict]:
    p = proposal(c, amount=Decimal("2300.00"), **kw)
    verdict = gate.evaluate(c, p, observation())
    assert verdict.outcome == "escalate" and verdict.causes == ["outside_bounds"]
    return p, verdict


def _next(c: Constitution, document: ConstitutionDocument) -> Constitution:
    return Constitution(
        tenant_id=c.tenant_id,
        version=c.version + 1,
        content_hash=content_hash(document),
        document=document,
    )


def test_amendment_executes_the_next_identical_case_only() -> None:
    c = constitution(TEXT)
    p, verdict = _escalated(c)
    amended = _next(
        c,
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(max_amount=Decimal("2500")),
            approver="maya",
            exception_id="ex-1",
        ),
    )
    rule = amended.document.rules[-1]
    assert rule.id == "amend-ex-1" and rule.effect == "allow"
    assert rule.applies_to == ["schedule_payment"]
    assert rule.amendment is not None and rule.amendment.from_version == 1

    again = proposal(amended, proposal_id="p2", amount=Decimal("1950.00"))
    assert gate.evaluate(amended, again, observation()).outcome == "execute"
    # Above the bound, another counterparty, another action type: still escalated.
    above = proposal(amended, amount=Decimal("2600.00"))
    assert gate.evaluate(amended, above, observation()).outcome == "escalate"
    other = proposal(amended, counterparty="Shady Co", reference=None)
    assert gate.evaluate(amended, other, observation()).causes == ["outside_bounds"]
    # Every rule of the old version is still there, unchanged: the amendment only adds.
    assert amended.document.rules[:-1] == c.document.rules


def test_amendment_can_expire() -> None:
    c = constitution(TEXT)
    p, verdict = _escalated(c)
    until = OBSERVED_AT + timedelta(days=30)
    amended = _next(
        c,
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(expires_at=until),
            approver="maya",
            exception_id="ex-2",
            now=OBSERVED_AT,
        ),
    )
    # The reasoner cites the rules of the version it reads, the new one included.
    again = proposal(amended, amount=Decimal("2300.00"))
    assert gate.evaluate(amended, again, observation()).outcome == "execute"
    late = observation(observed_at=until + timedelta(seconds=1))
    verdict_late = gate.evaluate(amended, again, late)
    assert verdict_late.outcome == "escalate" and verdict_late.expired == ["amend-ex-2"]
    with pytest.raises(AmendmentRefused, match="in the past"):
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(expires_at=OBSERVED_AT - timedelta(days=1)),
            approver="maya",
            exception_id="ex-3",
            now=OBSERVED_AT,
        )


def test_hostile_counterparty_stays_data() -> None:
    c = constitution(TEXT)
    evil = 'x" || true || "'
    p, verdict = _escalated(c, counterparty=evil, reference=None)
    amended = _next(
        c,
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(),
            approver="maya",
            exception_id="ex-4",
        ),
    )
    other = proposal(amended, counterparty="Anyone", reference=None, amount=Decimal("10.00"))
    other_verdict = gate.evaluate(amended, other, observation())
    assert "amend-ex-4" not in [m.rule_id for m in other_verdict.matched]


@pytest.mark.parametrize(
    "name", ["Bluebird \U0001f426 Studio", "Zeta\u202eevil", "\uff22luebird", 'a"b\\c\nd']
)
def test_any_unicode_counterparty_becomes_an_exact_match(name: str) -> None:
    """Review r1: a name outside the BMP (an emoji) used to give CEL a surrogate-pair escape
    it cannot parse, so the amendment failed with a retryable error and the decision hung."""
    c = constitution(TEXT)
    p, verdict = _escalated(c, counterparty=name, reference=None)
    amended = _next(
        c,
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(),
            approver="maya",
            exception_id="ex-5",
        ),
    )
    same = proposal(amended, proposal_id="p2", counterparty=name, reference=None)
    assert gate.evaluate(amended, same, observation()).outcome == "execute"
    for other in ("Bluebird Studio", "Bluebird", name + " "):
        near = proposal(amended, proposal_id="p2", counterparty=other, reference=None)
        assert "amend-ex-5" not in [
            m.rule_id for m in gate.evaluate(amended, near, observation()).matched
        ]


REFUSALS = {
    "irreversible": (
        {"action": "run_payroll", "amount": Decimal("10.00")},
        "irreversible",
    ),
    "an escalation rule": ({"amount": Decimal("4000.00")}, "only lifts"),
    "a citation mismatch": ({"citations": ["made-up"]}, "only lifts"),
}


@pytest.mark.parametrize("fields,message", REFUSALS.values(), ids=list(REFUSALS))
def test_amendment_refuses_what_it_cannot_loosen(fields: dict[str, object], message: str) -> None:
    c = constitution(TEXT)
    p = proposal(c, **fields)  # type: ignore[arg-type]
    verdict = gate.evaluate(c, p, observation())
    assert verdict.outcome == "escalate"
    with pytest.raises(AmendmentRefused, match=message):
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(),
            approver="maya",
            exception_id="ex-9",
        )


def test_amendment_refuses_to_override_a_quorum() -> None:
    c = constitution(
        TEXT.replace("min_confidence: 0.80", "min_confidence: 0.80\n  approvals_required: 2")
    )
    p = proposal(c, amount=Decimal("2300.00"))
    verdict = gate.evaluate(c, p, observation())
    assert verdict.approvals_required == 2
    with pytest.raises(AmendmentRefused, match="2 approvers"):
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(),
            approver="maya",
            exception_id="ex-5",
        )


def test_amendment_never_lifts_a_deny() -> None:
    c = constitution(TEXT)
    p, verdict = _escalated(c)
    amended = _next(
        c,
        amend(
            c.document,
            proposal=p,
            verdict=verdict,
            request=AmendmentRequest(),
            approver="maya",
            exception_id="ex-6",
        ),
    )
    blocked = proposal(amended, counterparty="Blocked Ltd", reference=None)
    assert gate.evaluate(amended, blocked, observation()).outcome == "deny"
