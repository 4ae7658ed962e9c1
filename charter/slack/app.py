"""The bolt app: buttons on an exception card open a modal; its submission is a `decide` update.

Slack wants an answer within three seconds. Every listener acknowledges first (bolt sends
the HTTP response at `ack()`) and only then talks to Temporal. The Slack user is mapped to a
member of the card's tenant (`members.slack_user_id`) and must hold an approver role; the
workflow's validator and the `record_decision` activity check again. Refusals go to the
clicking user only: an ephemeral message, or an error inside their own modal.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from charter.crypto import CryptoError, statements
from charter.governance import approvals
from charter.services import proofs
from charter.slack import cards
from charter.slack.config import SlackSettings
from charter.slack.replay import ReplayGuard
from charter.slack.signatures import SignedRequests
from charter.storage import Database
from charter.storage import slack_cards as store
from charter.storage.slack_cards import CardState, Member
from schemas import AmendmentRequest, Decision, DecisionReceipt
from schemas.errors import ErrorType

log = logging.getLogger(__name__)

_BUTTONS = re.compile(r"^charter_(approve|reject|amend)$")


class Refusal(Exception):
    """Why this Slack user may not decide this exception; shown to them alone."""


@dataclass(frozen=True)
class Authorised:
    member: Member
    state: CardState


def web_client(settings: SlackSettings) -> AsyncWebClient:
    if settings.bot_token is None:
        raise ValueError("Slack is not configured: no bot token")
    # slack_sdk redacts the Authorization header in its debug log; keep its logger at INFO
    # anyway so request bodies (reasons, amounts) stay out of debug logs.
    sdk_log = logging.getLogger("charter.slack.sdk")
    sdk_log.setLevel(logging.INFO)
    return AsyncWebClient(
        token=settings.bot_token.get_secret_value(), base_url=settings.api_url, logger=sdk_log
    )


class Approvals:
    """The listeners, with what they need: the database and the Temporal client."""

    def __init__(
        self, db: Database, temporal: Client, front_door: Ed25519PrivateKey | None = None
    ) -> None:
        self._db = db
        self._temporal = temporal
        # The Slack front door's key: it signs a decision on behalf of the member Slack's
        # verified request maps to; `record_decision` accepts it only for that member's
        # registered Slack id.
        self._front_door = front_door or statements.front_door_key("slack")

    async def authorise(
        self,
        ref: cards.ButtonValue,
        *,
        slack_user: str,
        team: str | None,
        channel: str | None,
        ts: str | None,
    ) -> Authorised:
        async with self._db.tenant(ref.t) as conn:
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
        if member is None or not member.active:
            raise Refusal(
                f"You are not a member of {state.tenant_name} in Charter, so you cannot decide."
            )
        if not approvals.is_approver(member.roles):
            raise Refusal(
                f"Only approvers of {state.tenant_name} can decide; {member.display_name} is not one."
            )
        if cards.is_reasoning_failure(state):
            # The reasoner's reply could not be read: there is no proposal to decide on.
            raise Refusal(
                f"{state.exception_id} has no proposal to approve or reject: the reasoner's "
                "reply could not be read. Review the run instead."
            )
        # The rule book, over what the card's tenant transaction read. Self-approval is left
        # to the workflow, which knows who requested the run; it and the `record_decision`
        # activity ask the rule book again, this refuses before the modal opens.
        refusal = self._judge(state, member)
        if refusal is None:
            return Authorised(member=member, state=state)
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

    @staticmethod
    def _judge(state: CardState, member: Member) -> approvals.Refusal | None:
        verdict, edited = cards.verdicts(state)
        case = approvals.Case(
            tenant_id=state.tenant_id,
            proposal_id=state.proposal_id,
            status=approvals.AWAITING if state.status == "open" else state.status,
            verdict=verdict,
            approved_verdict=edited,
            decisions=cards.ballots(state),
            approvers=frozenset({member.member_id}),
            roles={member.member_id: member.roles},
        )
        # Which button was pressed does not change who may decide: ask as an approval.
        ask = Decision(proposal_id=state.proposal_id, approver=member.member_id, outcome="approve")
        return approvals.judge(case, ask)

    # -- listeners ------------------------------------------------------------------------

    async def on_button(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = body.get("user", {}).get("id", "")
        channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get(
            "channel_id"
        )
        try:
            action = body["actions"][0]
            ref = cards.ButtonValue.model_validate_json(action["value"])
            ts = body.get("message", {}).get("ts") or body.get("container", {}).get("message_ts")
            authorised = await self.authorise(
                ref,
                slack_user=user,
                team=body.get("team", {}).get("id"),
                channel=channel,
                ts=ts,
            )
            amend = action["action_id"] == cards.AMEND
            if amend and not cards.amendable(authorised.state):
                raise Refusal("This exception cannot be turned into an amendment.")
            meta = cards.ModalMetadata(
                t=ref.t,
                e=ref.e,
                o="reject" if action["action_id"] == cards.REJECT else "approve",
                a=amend,
                c=str(channel),
                m=str(ts),
            )
        except Refusal as refusal:
            # Who and why, never tokens, signatures or request bodies.
            log.warning("slack click refused for user %s: %s", user, refusal)
            await self._tell(client, channel, user, str(refusal))
            return
        except (KeyError, IndexError, TypeError, ValidationError):
            log.warning("malformed card action from Slack user %s", user)
            await self._tell(client, channel, user, "That button is not a Charter card button.")
            return
        try:
            await client.views_open(
                trigger_id=body["trigger_id"], view=cards.decision_modal(authorised.state, meta)
            )
        except SlackApiError as exc:
            # Typically an expired trigger (Slack allows 3 seconds): let them click again.
            log.warning("views.open failed: %s", exc.response.get("error"))
            await self._tell(client, channel, user, "Slack could not open the form; click again.")

    async def on_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        user = body.get("user", {}).get("id", "")
        try:
            meta = cards.ModalMetadata.model_validate_json(view["private_metadata"])
        except (KeyError, ValidationError):
            await ack(response_action="errors", errors={cards.REASON: "This form is not valid."})
            return
        values = view.get("state", {}).get("values", {})

        def field(block: str) -> str:
            return str((values.get(block, {}).get(block, {}) or {}).get("value") or "").strip()

        try:
            authorised = await self.authorise(
                meta,
                slack_user=user,
                team=body.get("team", {}).get("id"),
                channel=meta.c,
                ts=meta.m,
            )
            # Everything the click checked, checked again: the submission is a request of its
            # own, and its metadata could have been forged.
            if meta.a and (meta.o != "approve" or not cards.amendable(authorised.state)):
                raise Refusal("This exception cannot be turned into an amendment.")
        except Refusal as refusal:
            log.warning("slack submission refused for user %s: %s", user, refusal)
            await ack(response_action="errors", errors={cards.REASON: str(refusal)})
            return
        errors: dict[str, str] = {}
        reason = field(cards.REASON)
        if not reason:
            errors[cards.REASON] = "Say why: the reason goes into the audit trail."
        # After an edit, the approval is for the edited amount: that is what to confirm.
        proposal = cards.approved_proposal(authorised.state)
        if meta.o == "approve" and cards.is_irreversible(authorised.state):
            typed = cards.parse_amount(field(cards.CONFIRM))
            expected = Decimal(str(proposal.get("amount") or 0))
            if typed is None or typed != expected:
                errors[cards.CONFIRM] = (
                    f"Type {cards.plain_amount(expected)} to confirm this irreversible action."
                )
        amendment = None
        if meta.a:
            raw = field(cards.MAX_AMOUNT)
            bound = cards.parse_amount(raw) if raw else None
            if raw and (bound is None or bound <= 0):
                errors[cards.MAX_AMOUNT] = "A positive amount, or leave it empty."
            else:
                amendment = AmendmentRequest(max_amount=bound)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        try:
            decision = Decision(
                proposal_id=authorised.state.proposal_id,
                approver=authorised.member.member_id,
                outcome=meta.o,
                reason=reason,
                amendment=amendment,
            )
        except ValidationError as exc:
            await ack(response_action="errors", errors={cards.REASON: exc.errors()[0]["msg"][:150]})
            return
        await ack()  # closes the modal within Slack's 3 seconds; the decision follows
        try:
            decision = await self.sign(
                authorised.state, decision, slack_user=user, team=body.get("team", {}).get("id")
            )
        except CryptoError as exc:
            log.warning("slack decision not signed: %s", exc)
            await self._tell(client, meta.c, user, f"Your decision was not sent: {exc}")
            return
        await self.decide(client, authorised.state, decision, channel=meta.c, user=user)

    async def sign(
        self, state: CardState, decision: Decision, *, slack_user: str, team: str | None
    ) -> Decision:
        """The decision, signed by the front door on behalf of the member Slack verified."""
        async with self._db.tenant(state.tenant_id) as conn:
            binding = await proofs.binding_for(
                conn, state.tenant_id, state.workflow_id, state.proposal_id, decision.edit
            )
        if binding is None:
            raise statements.StatementInvalid(f"{state.exception_id} has no recorded proposal")
        return proofs.sign_decision(
            decision,
            self._front_door,
            binding,
            datetime.now(UTC),
            via="slack",
            slack_user_id=slack_user,
            slack_team_id=team,
        )

    async def decide(
        self,
        client: AsyncWebClient,
        state: CardState,
        decision: Decision,
        *,
        channel: str,
        user: str,
    ) -> DecisionReceipt | None:
        """Send the `decide` update. The card is updated by the activity that records it."""
        handle = self._temporal.get_workflow_handle(state.workflow_id)
        try:
            receipt: DecisionReceipt = await handle.execute_update(
                "decide", decision, result_type=DecisionReceipt
            )
            return receipt
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            await self._tell(client, channel, user, f"Your decision was refused: {message}")
        except RPCError as exc:
            log.warning("decide on %s failed: %s", state.workflow_id, exc.status)
            await self._tell(
                client, channel, user, "Charter could not reach the run; nothing was decided."
            )
        return None

    @staticmethod
    async def _tell(client: AsyncWebClient, channel: str | None, user: str, text: str) -> None:
        if not channel or not user:
            return
        await client.chat_postEphemeral(channel=channel, user=user, text=text)


def build_app(
    settings: SlackSettings,
    db: Database,
    temporal: Client,
    *,
    client: AsyncWebClient | None = None,
    replay_guard: ReplayGuard | None = None,
) -> AsyncApp:
    """The bolt app for either transport: the same listeners for HTTP and Socket Mode."""
    settings.check_for_app()
    http = settings.mode == "http"
    assert settings.signing_secret is not None or not http
    app = AsyncApp(
        client=client or web_client(settings),
        signing_secret=settings.signing_secret.get_secret_value()
        if settings.signing_secret
        else None,
        # Socket Mode requests arrive over an authenticated websocket, not signed HTTP; over
        # HTTP the check is ours (bolt's, logging refusals without their bodies).
        request_verification_enabled=False,
        name="charter",
    )
    if http:
        assert settings.signing_secret is not None
        # Where bolt puts its own check: right after the SSL check, before any other
        # middleware (URL verification, authorization) sees an unverified request. Bolt has
        # no public way to place a middleware first.
        chain = app._async_middleware_list
        at = next((i + 1 for i, m in enumerate(chain) if type(m).__name__ == "AsyncSslCheck"), 0)
        chain.insert(at, SignedRequests(settings.signing_secret.get_secret_value()))
        app.middleware((replay_guard or ReplayGuard(db=db)).middleware)
    approvals = Approvals(db, temporal)
    app.action(_BUTTONS)(approvals.on_button)
    app.view(cards.MODAL)(approvals.on_submit)
    return app
