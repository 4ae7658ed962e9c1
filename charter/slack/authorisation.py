"""Who clicked a card, and whether they may decide it: before a modal opens, and again when
it is submitted (a submission is a request of its own; its metadata could be forged).

The Slack user is mapped to a member of the card's tenant (`members.slack_user_id`) who must
hold an approver role; the click must come from the card Charter posted, in the tenant's
channel and workspace. The rule book is asked over what the card's transaction read; the
workflow's validator and the `record_decision` activity ask it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.governance import approvals
from charter.slack import cards
from charter.storage import Database
from charter.storage import slack_cards as store
from charter.storage.slack_cards import CardState, Member
from schemas import Decision
from schemas.errors import ErrorType


class Refusal(Exception):
    """Why this Slack user may not decide this exception; shown to them alone."""


@dataclass(frozen=True)
class Authorised:
    member: Member
    state: CardState


async def authorise(
    db: Database,
    ref: cards.ButtonValue,
    *,
    slack_user: str,
    team: str | None,
    channel: str | None,
    ts: str | None,
) -> Authorised:
    """The member behind a click on the card `ref` names, if they may decide it; Refusal
    (in words for them) otherwise."""
    async with db.tenant(ref.t) as conn:
        config = await store.get_config(conn, ref.t)
        card = await store.get_card(conn, ref.t, ref.e)
        state = await store.card_state(conn, ref.t, ref.e)
        member = await store.member_by_slack_user(conn, ref.t, slack_user)
    if config is None or card is None or state is None:
        raise Refusal("This exception is not known here.")
    if config.team_id is not None and team != config.team_id:
        raise Refusal("This card belongs to another Slack workspace.")
    # The click must come from the card Charter posted, in the tenant's channel.
    if channel != card.channel_id or ts != card.message_ts:
        raise Refusal("Decide from the exception's card in its channel.")
    approver = _approver(state, member)
    _may_decide(state, approver)
    return Authorised(member=approver, state=state)


def _approver(state: CardState, member: Member | None) -> Member:
    if member is None or not member.active:
        raise Refusal(
            f"You are not a member of {state.tenant_name} in Charter, so you cannot decide."
        )
    if not approvals.is_approver(member.roles):
        raise Refusal(
            f"Only approvers of {state.tenant_name} can decide; {member.display_name} is not one."
        )
    return member


def _may_decide(state: CardState, member: Member) -> None:
    """The rule book, asked as an approval (which button was pressed does not change who may
    decide). Self-approval is left to the workflow, which knows who requested the run."""
    if cards.is_reasoning_failure(state):
        # The reasoner's reply could not be read: there is no proposal to decide on.
        raise Refusal(
            f"{state.exception_id} has no proposal to approve or reject: the reasoner's "
            "reply could not be read. Review the run instead."
        )
    refusal = approvals.judge(
        _case(state, member),
        Decision(proposal_id=state.proposal_id, approver=member.member_id, outcome="approve"),
    )
    if refusal is None:
        return
    if refusal.type == ErrorType.NOT_AWAITING_DECISION:
        raise Refusal(f"{state.exception_id} is already {state.status}.")
    if refusal.type == ErrorType.DUPLICATE_APPROVAL:
        raise Refusal(f"You have already decided on {state.exception_id}.")
    if refusal.type == ErrorType.UNAUTHORISED_APPROVER:
        raise Refusal(
            f"{state.exception_id} needs an approver with the role "
            f"{cards.roles_text(cards.role_requirements(state))}; {member.display_name} has "
            f"{', '.join(member.roles) or 'no role'}."
        )
    raise Refusal(refusal.message)


def _case(state: CardState, member: Member) -> approvals.Case:
    """The exception as the rule book sees it, from what the card's transaction read."""
    verdict, edited = cards.verdicts(state)
    return approvals.Case(
        tenant_id=state.tenant_id,
        proposal_id=state.proposal_id,
        status=approvals.AWAITING if state.status == "open" else state.status,
        verdict=verdict,
        approved_verdict=edited,
        decisions=cards.ballots(state),
        approvers=frozenset({member.member_id}),
        roles={member.member_id: member.roles},
    )
