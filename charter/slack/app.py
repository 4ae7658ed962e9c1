"""The bolt app: buttons on an exception card open a modal; its submission is a `decide` update.

Slack wants an answer within three seconds. Every listener acknowledges first (bolt sends
the HTTP response at `ack()`) and only then talks to Temporal. Who may click is
`authorisation`'s to say, what the modal says is `submission`'s to read, and the decision is
signed and sent through the one front door for decisions (`charter.services.deciding`).
Refusals go to the clicking user only: an ephemeral message, or an error inside their own
modal.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from charter.services import deciding
from charter.slack import cards, submission
from charter.slack.authorisation import Authorised, Refusal, authorise
from charter.slack.config import SlackSettings
from charter.slack.replay import ReplayGuard
from charter.slack.signatures import SignedRequests
from charter.storage import Database
from charter.storage.slack_cards import CardState
from schemas import Decision, DecisionReceipt

log = logging.getLogger(__name__)

_BUTTONS = re.compile(r"^charter_(approve|reject|amend)$")


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

    def __init__(self, db: Database, temporal: Client, front_door: Ed25519PrivateKey) -> None:
        self._db = db
        self._temporal = temporal
        # The Slack front door's key: it signs a decision on behalf of the member Slack's
        # verified request maps to; `record_decision` accepts it only for that member's
        # registered Slack id.
        self._front_door = front_door

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
            authorised = await authorise(
                self._db,
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
                d=cards.shown_digest(authorised.state),
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
        team = body.get("team", {}).get("id")
        try:
            meta = cards.ModalMetadata.model_validate_json(view["private_metadata"])
        except (KeyError, ValidationError):
            await ack(response_action="errors", errors={cards.REASON: "This form is not valid."})
            return
        try:
            authorised = await self._submitted_by(meta, user, team)
            decision = submission.decision(
                authorised, meta, view.get("state", {}).get("values", {})
            )
        except Refusal as refusal:
            log.warning("slack submission refused for user %s: %s", user, refusal)
            await ack(response_action="errors", errors={cards.REASON: str(refusal)})
            return
        except submission.FormErrors as invalid:
            await ack(response_action="errors", errors=invalid.errors)
            return
        await ack()  # closes the modal within Slack's 3 seconds; the decision follows
        await self.decide(
            client, authorised.state, decision, channel=meta.c, user=user, team=team, shown=meta.d
        )

    async def _submitted_by(
        self, meta: cards.ModalMetadata, user: str, team: str | None
    ) -> Authorised:
        authorised = await authorise(
            self._db, meta, slack_user=user, team=team, channel=meta.c, ts=meta.m
        )
        # Everything the click checked, checked again: the submission is a request of its
        # own, and its metadata could have been forged.
        if meta.a and (meta.o != "approve" or not cards.amendable(authorised.state)):
            raise Refusal("This exception cannot be turned into an amendment.")
        return authorised

    async def decide(
        self,
        client: AsyncWebClient,
        state: CardState,
        decision: Decision,
        *,
        channel: str,
        user: str,
        team: str | None,
        shown: str | None = None,
    ) -> DecisionReceipt | None:
        """Sign on behalf of the member Slack verified, and send the `decide` update; a
        refusal goes to them alone. The card is updated by the activity that records it.
        `shown`: the digest of the parameters the modal showed; anything else is refused."""
        door = deciding.FrontDoor(self._front_door, "slack", user, team)
        try:
            return await deciding.decide(
                self._db,
                self._temporal,
                state.tenant_id,
                state.workflow_id,
                decision,
                front_door=door,
                shown=shown,
            )
        except deciding.DecisionUnsigned as exc:
            log.warning("slack decision not signed: %s", exc)
            text = f"Your decision was not sent: {exc}"
        except deciding.DecisionRefused as exc:
            text = f"Your decision was refused: {exc}"
        except deciding.RunUnreachable as exc:
            log.warning("decide on %s failed: %s", state.workflow_id, exc.status)
            text = "Charter could not reach the run; nothing was decided."
        await self._tell(client, channel, user, text)
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
    front_door: Ed25519PrivateKey,
    client: AsyncWebClient | None = None,
    replay_guard: ReplayGuard | None = None,
) -> AsyncApp:
    """The bolt app for either transport: the same listeners for HTTP and Socket Mode.
    `front_door` is this machine's Slack front-door key (`statements.front_door_key`)."""
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
    approvals = Approvals(db, temporal, front_door)
    app.action(_BUTTONS)(approvals.on_button)
    app.view(cards.MODAL)(approvals.on_submit)
    return app
