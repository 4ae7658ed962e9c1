"""Small constitutions and observations for pure gate tests (no database, no Temporal)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from charter.governance.constitution import content_hash, load_yaml, parse_document
from schemas import Constitution, Invoice, Observation, Proposal, Vendor

OBSERVED_AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

BASE = """
defaults:
  min_confidence: 0.80
action_types:
  schedule_payment: {reversible: true}
  run_payroll: {reversible: false}
rules:
  - id: deny-blocked
    title: Never pay a blocked counterparty
    applies_to: [schedule_payment]
    when: counterparty == "Blocked Ltd"
    effect: deny
  - id: allow-small
    title: Pay up to $5,000
    applies_to: [schedule_payment, run_payroll]
    when: amount <= 5000.0
    effect: allow
  - id: allow-tiny-confident
    title: Pay up to $100 at a lower confidence
    applies_to: [schedule_payment]
    when: amount <= 100.0
    effect: allow
    min_confidence: 0.5
  - id: escalate-large
    title: Above $3,000 needs two humans
    applies_to: [schedule_payment]
    when: amount > 3000.0
    effect: escalate
    approvals_required: 2
    approvers: [owner]
"""


def constitution(text: str = BASE, version: int = 1, tenant: str = "acme") -> Constitution:
    document = load_yaml(text)
    return Constitution(
        tenant_id=tenant, version=version, content_hash=content_hash(document), document=document
    )


def from_raw(raw: dict[str, Any], version: int = 1) -> Constitution:
    document = parse_document(raw)
    return Constitution(
        tenant_id="acme", version=version, content_hash=content_hash(document), document=document
    )


def observation(**kw: Any) -> Observation:
    vendor = Vendor(vendor_id="v1", name="Bluebird", verified=False)
    invoice = Invoice(
        invoice_id="INV-1",
        vendor_id="v1",
        vendor_name="Bluebird",
        amount=Decimal("2300.00"),
        due_date=date(2026, 12, 1),
        status="open",
    )
    fields: dict[str, Any] = {
        "tenant_id": "acme",
        "agent": "payables",
        "observed_at": OBSERVED_AT,
        "source": "test",
        "vendors": [vendor],
        "invoices": [invoice],
    }
    fields.update(kw)
    return Observation(**fields)


def proposal(c: Constitution | None = None, **kw: Any) -> Proposal:
    fields: dict[str, Any] = {
        "proposal_id": "p1",
        "action": "schedule_payment",
        "amount": Decimal("1000.00"),
        "counterparty": "Bluebird",
        "reference": "INV-1",
        "confidence": 0.9,
        "rationale": "due",
    }
    fields.update(kw)
    if "citations" not in kw and c is not None:
        action = fields["action"]
        fields["citations"] = [
            r.id for r in c.document.rules if action in r.applies_to or "*" in r.applies_to
        ]
    return Proposal(**fields)
