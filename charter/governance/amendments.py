"""Amendments: a human approval that teaches the constitution a narrowly scoped allow rule.

The rule is as narrow as the exception it came from: the same action type, the same
counterparty, an amount bound. It can only add an allow rule, so it can never lift a deny,
override an escalation rule, or loosen irreversibility (the gate escalates irreversible
actions whatever the rules say).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from charter.governance.constitution import parse_document
from schemas import AmendmentOrigin, AmendmentRequest, ConstitutionDocument, Proposal, Rule, Verdict

#: Escalation causes an amendment can address. Anything else needs a new constitution.
AMENDABLE_CAUSES = frozenset({"outside_bounds", "below_confidence"})


class AmendmentRefused(ValueError):
    pass


def cel_string(value: str) -> str:
    """`value` as a CEL string literal. Not `json.dumps`: JSON writes a character outside the
    BMP (an emoji in a vendor's name) as a UTF-16 surrogate pair, which CEL refuses; CEL
    wants `\\U` and eight hex digits. Everything but printable ASCII is escaped, so bidi
    controls and look-alikes are visible in the rule and still match exactly."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def check_amendable(document: ConstitutionDocument, proposal: Proposal, verdict: Verdict) -> None:
    action_type = document.action_types.get(proposal.action)
    if action_type is None or not action_type.reversible:
        raise AmendmentRefused(
            f"{proposal.action!r} is irreversible: it always needs a human, no amendment can change that"
        )
    other = [c for c in verdict.causes if c not in AMENDABLE_CAUSES]
    if other:
        raise AmendmentRefused(
            "an amendment only lifts 'outside bounds' or 'below confidence'; this exception "
            f"also escalated for: {', '.join(other)}"
        )
    if verdict.approvals_required > 1:
        raise AmendmentRefused(
            f"this exception needs {verdict.approvals_required} approvers; one approver cannot "
            "amend it away"
        )
    if not proposal.counterparty:
        raise AmendmentRefused("an amendment needs a counterparty to scope the rule to")
    if proposal.amount is None:
        raise AmendmentRefused("an amendment needs an amount to bound the rule by")


def amend(
    document: ConstitutionDocument,
    *,
    proposal: Proposal,
    verdict: Verdict,
    request: AmendmentRequest,
    approver: str,
    exception_id: str,
    now: datetime | None = None,
    vendor_id: str | None = None,
) -> ConstitutionDocument:
    """Return the document with one new allow rule appended; validated like any other.

    `proposal` is what the approver approved (the edited parameters after an edit) and
    `verdict` the gate's verdict on it. `vendor_id`: the vendor record the exception showed;
    the rule binds to it (and the record the proposal references), not only to a display
    name a second vendor record could share.
    """
    check_amendable(document, proposal, verdict)
    if request.expires_at is not None:
        if request.expires_at.tzinfo is None:
            raise AmendmentRefused("the amendment's expiry needs a timezone")
        if now is not None and request.expires_at <= now:
            raise AmendmentRefused(f"the amendment's expiry {request.expires_at} is in the past")
    assert proposal.counterparty is not None and proposal.amount is not None
    bound = request.max_amount if request.max_amount is not None else proposal.amount
    if bound < proposal.amount:
        raise AmendmentRefused(
            f"max_amount {bound} is below the amount being approved ({proposal.amount})"
        )
    bound = Decimal(bound).quantize(Decimal("0.01"))
    # A CEL string literal: hostile counterparty names stay data, every character exact.
    condition = f"counterparty == {cel_string(proposal.counterparty)} && amount <= {bound}"
    if vendor_id is not None:
        condition = (
            f"has(vendor.vendor_id) && vendor.vendor_id == {cel_string(vendor_id)} && {condition}"
        )
    elif proposal.reference:
        condition = f"reference == {cel_string(proposal.reference)} && {condition}"
    condition += f" && currency == {cel_string(proposal.currency)}"
    min_conf = None
    if "below_confidence" in verdict.causes:
        min_conf = math.floor(proposal.confidence * 100) / 100
    rule = Rule(
        id=f"amend-{exception_id}",
        title=(
            f"Allow {proposal.action} to {proposal.counterparty[:80]} up to "
            f"{proposal.currency} {bound} (approved by {approver})"
        ),
        applies_to=[proposal.action],
        when=condition,
        effect="allow",
        min_confidence=min_conf,
        expires_at=request.expires_at,
        amendment=AmendmentOrigin(
            approved_by=approver,
            exception_id=exception_id,
            from_version=verdict.constitution_version,
        ),
    )
    raw = document.model_dump(mode="json", exclude_none=True)
    raw["rules"].append(rule.model_dump(mode="json", exclude_none=True))
    amended = parse_document(raw)
    _check_only_adds(document, amended)
    return amended


def _check_only_adds(before: ConstitutionDocument, after: ConstitutionDocument) -> None:
    """Belt and braces: an amendment adds one allow rule and changes nothing else."""
    if after.action_types != before.action_types or after.defaults != before.defaults:
        raise AmendmentRefused("an amendment cannot change action types or defaults")
    if after.limits != before.limits:
        raise AmendmentRefused(
            "an amendment cannot change a limit; only an owner's new version can"
        )
    if (
        after.rules[: len(before.rules)] != before.rules
        or len(after.rules) != len(before.rules) + 1
    ):
        raise AmendmentRefused("an amendment can only append one rule")
    if after.rules[-1].effect != "allow":
        raise AmendmentRefused("an amendment can only add an allow rule")
