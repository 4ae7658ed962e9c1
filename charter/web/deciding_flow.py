"""Deciding from the inbox: the form read into a `Decision`, its statement made for the
member's passkey, and the signed decision sent through the one front door for decisions.

The page asks for the statement (`/statement`): the server makes it, bound to the run, the
proposal and the digest of the parameters approved, and returns its exact text, its digest
(the WebAuthn challenge) and the parameters it approves, which the page shows. The member's
authenticator signs that digest; the page sends the text and the assertion back (`/decide`),
and the run's `record_decision` verifies the assertion as it verifies any statement. The
server keeps nothing between the two: a statement altered on the way fails verification.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from charter.crypto import passkeys, statements
from charter.crypto.errors import CryptoError
from charter.presentation.report import money
from charter.services import deciding
from charter.slack import cards
from charter.storage import member_keys, slack_cards
from charter.storage.slack_cards import CardState
from charter.web import exception_view, sessions
from charter.web.context import WebContext, context
from charter.web.passkey_flows import body_text
from charter.web.security import Refused, check_csrf
from schemas import AmendmentRequest, Decision, ProposalEdit


async def exception_state(ctx: WebContext, tenant: str, exception_id: str) -> CardState:
    async with ctx.db.tenant(tenant) as conn:
        state = await slack_cards.card_state(conn, tenant, exception_id)
    if state is None:
        raise Refused(f"no exception {exception_id} for this tenant", status=404)
    return state


def _amount(text: str, what: str) -> Decimal | None:
    if not text.strip():
        return None
    amount = cards.parse_amount(text)
    if amount is None or amount <= 0:
        raise Refused(f"{what}: a positive amount, like 1200.00", status=400)
    return amount


def decision_from(form: dict[str, Any], state: CardState, member: str) -> Decision:
    """What the member asked for, as the rule book allows it on this exception now."""
    allowed = exception_view.choices(state)
    outcome = str(form.get("outcome", ""))
    if outcome not in ("approve", "reject") or not allowed.open:
        raise Refused("this exception is not open for that decision", status=409)
    reason = str(form.get("reason", "")).strip()
    if not reason:
        raise Refused("say why: the reason goes into the audit trail", status=400)
    edit = _amount(str(form.get("amount", "")), "the amount to approve instead")
    amend = form.get("amend") == "1"
    if outcome == "reject" and (edit is not None or amend):
        raise Refused("an edit or an amendment goes with an approval only", status=400)
    if edit is not None and not allowed.edit:
        raise Refused("an edit comes with the first approval only", status=409)
    if amend and not allowed.amend:
        raise Refused("this exception cannot be turned into an amendment", status=409)
    if outcome == "approve" and allowed.confirm_amount is not None:
        # What is approved is confirmed: the edited amount with an edit.
        expected = edit if edit is not None else Decimal(allowed.confirm_amount)
        typed = cards.parse_amount(str(form.get("confirm", "")))
        if typed is None or typed != expected:
            raise Refused(
                f"type {cards.plain_amount(expected)} to confirm this irreversible action",
                status=400,
            )
    bound = _amount(str(form.get("max_amount", "")), "always allow up to") if amend else None
    try:
        return Decision(
            proposal_id=state.proposal_id,
            approver=member,
            outcome="approve" if outcome == "approve" else "reject",
            reason=reason,
            amendment=AmendmentRequest(max_amount=bound) if amend else None,
            edit=ProposalEdit(amount=edit) if edit is not None else None,
        )
    except ValidationError as exc:
        raise Refused(str(exc.errors()[0]["msg"])[:200], status=400) from None


async def make_statement(request: Request) -> Response:
    ctx = context(request)
    form = dict(await request.form())
    await check_csrf(request, ctx.origin, form=form)
    tenant, exception_id = request.path_params["tenant"], request.path_params["exception"]
    who = await sessions.signed_in(request, ctx.db, tenant, ctx.settings.session_minutes)
    pending = await deciding.awaiting(ctx.db, tenant, exception_id)
    decision = decision_from(form, await exception_state(ctx, tenant, exception_id), who.member_id)
    to_sign = await deciding.statement_for_passkey(
        ctx.db, tenant, pending.workflow_id, decision, key_id=who.key_id
    )
    async with ctx.db.tenant(tenant) as conn:
        key = await member_keys.get(conn, tenant, who.key_id)
    assert key is not None and key.credential_id is not None
    p = to_sign.approved
    shown = {
        "outcome": decision.outcome,
        "action": p.action,
        "amount": money(p.amount, p.currency),
        "counterparty": exception_view.text(p.counterparty or "", 200),
        "reason": exception_view.text(decision.reason, 500),
        "amendment": decision.amendment is not None,
    }
    return JSONResponse(
        {
            "statement": to_sign.text,
            "challenge": passkeys.b64url(passkeys.challenge_for(to_sign.text)),
            "credential": key.credential_id,
            "rp_id": ctx.settings.rp_id(),
            "shown": shown,
        }
    )


def _signed_decision(text: str, member: str) -> tuple[Decision, str]:
    """The decision in a signed answer from the page, and the run it is for; only the
    signed-in member's own."""
    try:
        answer = json.loads(text)
        statement_text = str(answer["statement"])
        response = answer["response"]
        assertion = passkeys.Assertion(
            str(response["authenticatorData"]),
            str(response["clientDataJSON"]),
            str(response["signature"]),
        ).encoded()
        statement = statements.parse(statement_text)
    except (ValueError, KeyError, TypeError, CryptoError):
        raise Refused("that is not a signed decision", status=400) from None
    if statement.member_id != member:
        raise Refused("you can only send a decision signed as yourself")
    return deciding.signed(statement_text, assertion), statement.workflow_id


async def decide(request: Request) -> Response:
    ctx = context(request)
    await check_csrf(request, ctx.origin)
    tenant, exception_id = request.path_params["tenant"], request.path_params["exception"]
    who = await sessions.signed_in(request, ctx.db, tenant, ctx.settings.session_minutes)
    pending = await deciding.awaiting(ctx.db, tenant, exception_id)
    decision, workflow_id = _signed_decision(await body_text(request), who.member_id)
    if workflow_id != pending.workflow_id or decision.proposal_id != pending.proposal_id:
        raise Refused("that decision is for another exception", status=409)
    receipt = await deciding.send(ctx.client, pending.workflow_id, decision)
    verb = "Approved" if receipt.outcome == "approve" else "Rejected"
    line = f"{verb} {exception_id}"
    if receipt.approvals_required > 1:
        line += f" ({receipt.approvals} of {receipt.approvals_required} approvals)"
    if receipt.amendment_version:
        line += f"; constitution amended to v{receipt.amendment_version}"
    return JSONResponse({"message": line, "status": receipt.status})


async def status(request: Request) -> Response:
    """What the page polls after deciding: the exception's status and the act's result."""
    ctx = context(request)
    tenant, exception_id = request.path_params["tenant"], request.path_params["exception"]
    await sessions.signed_in(request, ctx.db, tenant, ctx.settings.session_minutes)
    state = await exception_state(ctx, tenant, exception_id)
    return JSONResponse(
        {
            "status": state.status,
            "executed": state.executed_reference is not None,
            "result": exception_view.result(state),
        }
    )
