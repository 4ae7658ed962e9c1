"""A submitted decision modal read into a `Decision`, or the errors to show inside it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from charter.slack import cards
from charter.slack.authorisation import Authorised
from schemas import AmendmentRequest, Decision


class FormErrors(Exception):
    """What to fix, by the block that holds it: Slack shows each under its field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _field(values: dict[str, Any], block: str) -> str:
    return str((values.get(block, {}).get(block, {}) or {}).get("value") or "").strip()


def _confirmation_error(authorised: Authorised, typed: str) -> str | None:
    """An irreversible approval must be confirmed by typing its amount: after an edit, the
    edited amount, since that is what is approved."""
    proposal = cards.approved_proposal(authorised.state)
    expected = Decimal(str(proposal.get("amount") or 0))
    amount = cards.parse_amount(typed)
    if amount is None or amount != expected:
        return f"Type {cards.plain_amount(expected)} to confirm this irreversible action."
    return None


def _amendment(raw: str) -> AmendmentRequest | None:
    """The amendment's bound as typed (none: the amount); None if it is not a positive amount."""
    bound = cards.parse_amount(raw) if raw else None
    if raw and (bound is None or bound <= 0):
        return None
    return AmendmentRequest(max_amount=bound)


def decision(authorised: Authorised, meta: cards.ModalMetadata, values: dict[str, Any]) -> Decision:
    """The decision the member submitted, unsigned; FormErrors if a field needs fixing."""
    errors: dict[str, str] = {}
    reason = _field(values, cards.REASON)
    if not reason:
        errors[cards.REASON] = "Say why: the reason goes into the audit trail."
    if meta.o == "approve" and cards.is_irreversible(authorised.state):
        wrong = _confirmation_error(authorised, _field(values, cards.CONFIRM))
        if wrong is not None:
            errors[cards.CONFIRM] = wrong
    amendment = _amendment(_field(values, cards.MAX_AMOUNT)) if meta.a else None
    if meta.a and amendment is None:
        errors[cards.MAX_AMOUNT] = "A positive amount, or leave it empty."
    if errors:
        raise FormErrors(errors)
    try:
        return Decision(
            proposal_id=authorised.state.proposal_id,
            approver=authorised.member.member_id,
            outcome=meta.o,
            reason=reason,
            amendment=amendment,
        )
    except ValidationError as exc:
        raise FormErrors({cards.REASON: exc.errors()[0]["msg"][:150]}) from None
