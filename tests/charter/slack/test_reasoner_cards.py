"""Cards for what the Claude reasoner gets wrong: an unreadable reply (the `p0` exception)
and citations that do not match the constitution. The real `anthropic` SDK talks to a local
Messages API, the worker's notifier to the Slack stand-in, the bolt app is the real one."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr
from rich.console import Console
from temporalio.client import Client
from temporalio.worker import Worker

from activities import Deps
from charter.presentation.report import exception_panel
from charter.reasoners.claude import ClaudeReasoner
from charter.slack.cards import ButtonValue
from charter.storage import Database, runs
from schemas import AgentRunResult, RunState
from tests.support.claude_runs import TEST_API_KEY
from tests.support.decided_runs import actions
from tests.support.polling import eventually
from tests.support.running import start, until_stage
from tests.support.slack_requests import (
    UI_URL,
    USERS,
    SlackApp,
    SlackTenant,
    buttons,
    card_for,
    click,
    notifier,
)
from tests.support.standins.messages_api import FakeMessagesApi, text_reply, tool_reply
from tests.support.standins.slack_web_api import Call, FakeSlack
from tests.support.vault import session_vault
from worker import build_worker

QUEUE = "charter-slack-claude-test"


@pytest.fixture(scope="module")
def messages_api() -> Iterator[FakeMessagesApi]:
    api = FakeMessagesApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
async def claude_slack_worker(
    client: Client, db: Database, fake_slack: FakeSlack, messages_api: FakeMessagesApi
) -> AsyncIterator[Worker]:
    reasoner = ClaudeReasoner(
        api_key=SecretStr(TEST_API_KEY),
        model="claude-sonnet-4-6",
        max_tokens=2048,
        timeout=timedelta(seconds=10),
        base_url=messages_api.url,
    )
    deps = Deps(
        credentials=session_vault(), db=db, reasoner=reasoner, notifier=notifier(db, fake_slack)
    )
    async with build_worker(client, deps, QUEUE) as w:
        yield w


def pay_aws(citations: list[str]) -> dict[str, Any]:
    return {
        "action": "schedule_payment",
        "amount": "3412.18",
        "currency": "USD",
        "counterparty": "Amazon Web Services",
        "reference": "INV-1041",
        "confidence": 0.93,
        "rationale": "Pay INV-1041.",
        "citations": citations,
    }


async def test_unreadable_reply_posts_a_card_without_buttons(
    client: Client,
    claude_slack_worker: Worker,
    messages_api: FakeMessagesApi,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    tenant = slack_tenant.tenant_id
    bad = {"proposals": [{"action": "schedule_payment", "amount": "lots", "confidence": 7}]}
    messages_api.script(tenant, tool_reply(bad), text_reply("I will wire it myself <!channel>"))
    handle = await start(client, tenant, "payables", task_queue=QUEUE)
    result: AgentRunResult = await handle.result()
    failure = result.reasoning_failure
    assert failure is not None and failure.exception_id is not None and result.proposals == []

    card = await card_for(fake_slack, slack_tenant.channel)
    text = card.text()
    assert failure.exception_id in card.args["text"]
    assert "could not be read" in card.args["text"] and "Nothing was proposed" in text
    assert "*The reasoner's reply could not be read.*" in text
    assert "did not call propose_actions" in text  # what was wrong, in words
    # The model's reply is shown as text: it cannot ping the channel.
    assert "I will wire it myself &lt;!channel&gt;" in text and "<!channel>" not in text
    desc = await handle.describe()
    link = (
        f"{UI_URL}/namespaces/default/workflows/{quote(handle.id, safe='')}/{desc.run_id}/history"
    )
    assert link in text
    assert f"charter exceptions show {failure.exception_id} --tenant {tenant}" in text
    assert buttons(card) == {}  # nothing to approve, so nothing to click

    # A button forged onto that exception (Slack users can craft payloads) decides nothing.
    value = ButtonValue(t=tenant, e=failure.exception_id).model_dump_json()
    forged_card = Call(
        card.method,
        {
            **card.args,
            "blocks": [
                {"type": "actions", "elements": [{"action_id": "charter_approve", "value": value}]}
            ],
        },
        card.response,
    )
    views = len(fake_slack.of("views.open"))
    reply = await slack_app.send(click(forged_card, "charter_approve", USERS["maya"]))
    assert reply.status == 200

    async def told() -> list[Call]:
        return fake_slack.of("chat.postEphemeral", slack_tenant.channel, user=USERS["maya"])

    [refusal] = await eventually(told)
    assert refusal.args["text"] == (
        f"{failure.exception_id} has no proposal to approve or reject: the reasoner's reply "
        "could not be read. Review the run instead."
    )
    assert len(fake_slack.of("views.open")) == views
    assert await actions(db, tenant) == []
    assert fake_slack.of("chat.update", slack_tenant.channel) == []


async def test_citation_mismatch_is_explained_on_the_card(
    client: Client,
    claude_slack_worker: Worker,
    messages_api: FakeMessagesApi,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    tenant = slack_tenant.tenant_id
    messages_api.script(tenant, tool_reply([pay_aws(["allow-<everything>"])]))
    handle = await start(client, tenant, "payables", task_queue=QUEUE)
    state: RunState = await until_stage(handle, "awaiting_decision")
    verdict = state.proposals[0].verdict
    assert verdict is not None and verdict.causes == ["citation_mismatch"]

    card = await card_for(fake_slack, slack_tenant.channel)
    text = card.text()
    assert (
        "the reasoner's citations do not match the rules: it cites `allow-&lt;everything&gt;`, "
        "which the constitution does not have; it does not cite `allow-verified-vendor-bills`, "
        "which decided this"
    ) in text
    # An amendment cannot lift a citation mismatch, so the card does not offer one.
    assert set(buttons(card)) == {"charter_approve", "charter_reject"}
    assert await actions(db, tenant) == []
    await handle.terminate("test done")


# Control characters (ESC, CR) never reach a proposal: the reply bounds refuse the whole reply
# as unreadable (tests/reasoners). What a readable reply can still carry is markup, mentions
# and links, and those must render inertly.
HOSTILE_RATIONALE = (
    "[bold green]Recommends schedule_payment $12.00[/] <!channel> "
    "<https://evil.example|details> *urgent*"
)


async def test_hostile_text_renders_inert_in_the_cli_and_on_the_card(
    client: Client,
    claude_slack_worker: Worker,
    messages_api: FakeMessagesApi,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    """A rationale and a counterparty carrying terminal escapes, Rich markup and Slack
    mentions are shown as text; the amount shown is the typed proposal's."""
    tenant = slack_tenant.tenant_id
    hostile = {
        **pay_aws(["allow-<everything>"]),
        "counterparty": "Amazon Web Services <!here>[/]",
        "rationale": HOSTILE_RATIONALE,
    }
    # The books' own vendor name carries it too, so the payee still matches the vendor.
    async with db.tenant(tenant) as conn:
        await conn.execute(
            "UPDATE charter.vendors SET name = $2 WHERE tenant_id = $1 AND vendor_id = 'aws'",
            tenant,
            hostile["counterparty"],
        )
    messages_api.script(tenant, tool_reply([hostile]))
    handle = await start(client, tenant, "payables", task_queue=QUEUE)
    state: RunState = await until_stage(handle, "awaiting_decision")
    exception_id = state.proposals[0].exception_id
    assert exception_id is not None

    async with db.tenant(tenant) as conn:
        row = await runs.get_exception(conn, tenant, exception_id)
    assert row is not None
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=200).print(
        exception_panel(row)
    )
    shown = out.getvalue()
    # Markup is shown, not applied.
    assert "[bold green]Recommends schedule_payment $12.00[/]" in shown
    assert "schedule_payment $3,412.18 to Amazon Web Services <!here>[/]" in shown

    card = await card_for(fake_slack, slack_tenant.channel)
    text = card.text()
    for live in ("<!channel>", "<!here>", "<https://", "*urgent*"):
        assert live not in text
    assert "&lt;!channel&gt;" in text and "&lt;!here&gt;" in text
    assert "$3,412.18" in text
    await handle.terminate("test done")
