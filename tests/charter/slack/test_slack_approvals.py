"""Deciding from Slack, end to end: the real bolt app over HTTP, signed requests, the real
Temporal dev server and PostgreSQL, and a local stand-in for the Slack Web API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from charter.notify.notifier import ExceptionNotice
from charter.storage import Database, constitution_versions
from charter.storage import slack_cards as store
from schemas import Decision, ProposalEdit, RunState
from tests.support.decided_runs import actions, adopt_variant
from tests.support.polling import eventually
from tests.support.running import chain_ok, start, until_stage
from tests.support.signing import decide
from tests.support.slack_requests import (
    SLACK_QUEUE,
    UI_URL,
    USERS,
    SlackApp,
    SlackTenant,
    buttons,
    card_for,
    click,
    notifier,
    submission,
)
from tests.support.standins.slack_web_api import Call, FakeSlack
from workflows import AgentLoop

#: The Acme rule escalating large payments (INV-1044 is above it), as the constitution has it.
LARGE = "    when: amount > 10000.0\n    effect: escalate\n"
#: Maya's approval of $14,800 with an edit down to $12,000.
MAYA_EDITS = Decision(
    proposal_id="p1",
    approver="maya",
    outcome="approve",
    reason="minus the disputed part",
    edit=ProposalEdit(amount=Decimal("12000.00")),
)


async def _escalate(client: Client, tenant: SlackTenant, agent: str, ref: str, **kw: Any) -> Any:
    handle = await start(client, tenant.tenant_id, agent, task_queue=SLACK_QUEUE, focus=[ref], **kw)
    await until_stage(handle, "awaiting_decision")
    return handle


async def _modal(fake: FakeSlack, before: int) -> dict[str, Any]:
    async def opened() -> dict[str, Any] | None:
        views = fake.of("views.open")
        return views[-1].args["view"] if len(views) > before else None

    view: dict[str, Any] = await eventually(opened)
    return view


async def _updated(fake: FakeSlack, card: Call, *needles: str) -> Call:
    """The latest chat.update of the card, once it contains every needle."""

    async def check() -> Call | None:
        updates = fake.of("chat.update", card.args["channel"], ts=card.response["ts"])
        if updates and all(n in updates[-1].text() for n in needles):
            return updates[-1]
        return None

    update: Call = await eventually(check)
    return update


async def _decide(
    app: SlackApp, fake: FakeSlack, card: Call, action: str, user: str, values: dict[str, str]
) -> dict[str, Any]:
    before = len(fake.of("views.open"))
    reply = await app.send(click(card, action, USERS[user]))
    assert reply.status == 200
    view = await _modal(fake, before)
    reply = await app.send(submission(view, USERS[user], values))
    assert reply.status == 200
    return reply.json()


async def _no_update_accepted(handle: WorkflowHandle[Any, Any]) -> bool:
    history = await handle.fetch_history()
    return not any(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events
    )


async def test_escalation_posts_a_card_with_full_context(
    client: Client,
    slack_worker: Worker,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    handle = await _escalate(client, slack_tenant, "payables", "INV-1043")
    card = await card_for(fake_slack, slack_tenant.channel)
    text = card.text()
    # What the agent observed, what it recommends, which rules apply, why not alone.
    assert "Bluebird Design Studio" in text and "*NOT verified*" in text
    assert "Brand refresh, milestone 1" in text
    assert "`schedule_payment` $2,300.00 to Bluebird Design Studio" in text
    assert "No rule allows this action." in text
    assert (
        "`allow-verified-vendor-bills` (evaluated, did not match): Pay verified vendors up to $5,000 per invoice"
        in text
    )
    assert "outside bounds (no rule allows it)" in text
    assert "Constitution v1" in text
    desc = await handle.describe()
    link = (
        f"{UI_URL}/namespaces/default/workflows/{quote(handle.id, safe='')}/{desc.run_id}/history"
    )
    assert link in text
    assert set(buttons(card)) == {"charter_approve", "charter_reject", "charter_amend"}
    # The card is recorded against the exception, so a retried activity never posts twice.
    state: RunState = await handle.query(AgentLoop.state)
    exception_id = state.proposals[0].exception_id
    assert exception_id is not None
    async with db.tenant(slack_tenant.tenant_id) as conn:
        row = await store.get_card(conn, slack_tenant.tenant_id, exception_id)
    assert row is not None and row.message_ts == card.response["ts"]
    retry = ExceptionNotice(
        kind="opened",
        tenant_id=slack_tenant.tenant_id,
        exception_id=exception_id,
        workflow_id=handle.id,
        run_id=desc.run_id,
        at=datetime.now(UTC),
    )
    await notifier(db, fake_slack).notify(retry)
    assert len([c for c in fake_slack.of("chat.postMessage", slack_tenant.channel)]) == 1
    await handle.terminate("test done")


async def test_approve_in_slack_executes_and_updates_the_card(
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    handle = await _escalate(client, slack_tenant, "payables", "INV-1043")
    card = await card_for(fake_slack, slack_tenant.channel)
    view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "maya")
    assert view["callback_id"] == "charter_decision"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["reason"]
    reply = await slack_app.send(
        submission(view, USERS["maya"], {"reason": "Known studio, contract signed"})
    )
    assert reply.status == 200 and reply.body == ""  # the modal closes at once
    result = await handle.result()
    ps = result.proposals[0]
    assert ps.status == "executed" and ps.decisions[0].approver == "maya"
    assert ps.decisions[0].reason == "Known studio, contract signed"
    update = await _updated(fake_slack, card, "Approved by *Maya Chen (CEO)* (maya)", "Executed")
    assert "Known studio, contract signed" in update.text()
    assert buttons(update) == {}  # decided: no more buttons
    assert fake_slack.of("chat.postEphemeral", slack_tenant.channel) == []
    await chain_ok(db, slack_tenant.tenant_id)


async def _modal_after_click(
    app: SlackApp, fake: FakeSlack, card: Call, action: str, user: str
) -> dict[str, Any]:
    before = len(fake.of("views.open"))
    reply = await app.send(click(card, action, USERS[user]))
    assert reply.status == 200
    return await _modal(fake, before)


async def test_reject_in_slack(
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    handle = await _escalate(client, slack_tenant, "payables", "INV-1045")
    card = await card_for(fake_slack, slack_tenant.channel)
    assert "confidence below threshold: confidence 0.55 &lt; threshold 0.80" in card.text()
    # The hostile memo is shown as text, never as a Slack mention or link.
    assert "<!channel>" not in card.text()
    await _decide(slack_app, fake_slack, card, "charter_reject", "sam", {"reason": "Phishing"})
    result = await handle.result()
    assert result.proposals[0].status == "rejected" and result.proposals[0].action is None
    update = await _updated(fake_slack, card, "Rejected by *Sam Okafor (Finance lead)*")
    assert "Nothing was executed." in update.text() and buttons(update) == {}
    async with db.tenant(slack_tenant.tenant_id) as conn:
        actions = await conn.fetchval(
            "SELECT count(*) FROM charter.actions WHERE tenant_id = $1", slack_tenant.tenant_id
        )
    assert actions == 0


async def test_approve_with_amendment(
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    handle = await _escalate(client, slack_tenant, "payables", "INV-1043")
    card = await card_for(fake_slack, slack_tenant.channel)
    view = await _modal_after_click(slack_app, fake_slack, card, "charter_amend", "maya")
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "reason",
        "max_amount",
    ]
    # A bound that is not a number stays in the modal, for this user only, and decides nothing.
    reply = await slack_app.send(
        submission(view, USERS["maya"], {"reason": "Our studio", "max_amount": "lots"})
    )
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"max_amount": "A positive amount, or leave it empty."},
    }
    assert await _no_update_accepted(handle)
    reply = await slack_app.send(
        submission(view, USERS["maya"], {"reason": "Our studio", "max_amount": "$2,500"})
    )
    assert reply.status == 200 and reply.body == ""
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    async with db.tenant(slack_tenant.tenant_id) as conn:
        latest = await constitution_versions.get(conn, slack_tenant.tenant_id)
    assert latest.version == 2
    rule = latest.document.rules[-1]
    assert rule.amendment is not None and rule.amendment.approved_by == "maya"
    assert "2500.00" in rule.when
    await _updated(fake_slack, card, "Constitution amended to v2", "Executed")


async def test_irreversible_action_needs_the_amount_typed(
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    handle = await _escalate(client, slack_tenant, "payroll", "PR-2026-11B")
    card = await card_for(fake_slack, slack_tenant.channel)
    assert "irreversible action: it cannot be undone" in card.text()
    # No amendment can lift irreversibility, so the card does not offer one.
    assert set(buttons(card)) == {"charter_approve", "charter_reject"}
    view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "maya")
    assert "confirm_amount" in [b.get("block_id") for b in view["blocks"]]
    reply = await slack_app.send(
        submission(view, USERS["maya"], {"reason": "Payroll", "confirm_amount": "9640"})
    )
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"confirm_amount": "Type 96400.00 to confirm this irreversible action."},
    }
    assert await _no_update_accepted(handle)
    reply = await slack_app.send(
        submission(view, USERS["maya"], {"reason": "Payroll", "confirm_amount": "96,400.00"})
    )
    assert reply.status == 200 and reply.body == ""
    assert (await handle.result()).proposals[0].status == "executed"
    await _updated(fake_slack, card, "Approved by *Maya Chen (CEO)*", "Executed")


async def test_unauthorised_slack_users_get_an_ephemeral_error_and_change_nothing(
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    handle = await _escalate(client, slack_tenant, "payables", "INV-1043", requested_by="sam")
    card = await card_for(fake_slack, slack_tenant.channel)
    views_before = len(fake_slack.of("views.open"))
    audit_before = await chain_ok(db, slack_tenant.tenant_id)
    cases = {
        "U0LEO": "Only approvers of Acme Robotics Inc. can decide; Leo Park (Engineer) is not one.",
        "U0STRANGER": "You are not a member of Acme Robotics Inc. in Charter, so you cannot decide.",
    }
    for user, message in cases.items():
        reply = await slack_app.send(click(card, "charter_approve", user))
        assert reply.status == 200  # acknowledged; the refusal goes to the user alone

        async def told(user: str = user) -> list[Call]:
            return fake_slack.of("chat.postEphemeral", slack_tenant.channel, user=user)

        ephemeral = await eventually(told)
        assert ephemeral[0].args["text"] == message
    # A click on a copy of the card elsewhere (another channel) is refused too.
    elsewhere = click(card, "charter_approve", "U0MAYA", channel={"id": "C0OTHER"})
    elsewhere["container"]["channel_id"] = "C0OTHER"
    await slack_app.send(elsewhere)

    async def refused_elsewhere() -> list[Call]:
        return fake_slack.of("chat.postEphemeral", "C0OTHER", user="U0MAYA")

    assert (await eventually(refused_elsewhere))[0].args["text"] == (
        "Decide from the exception's card in its channel."
    )
    # A modal submission forged around the button (leo reusing a modal's metadata) is refused.
    maya_view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "maya")
    views_before += 1
    reply = await slack_app.send(submission(maya_view, "U0LEO", {"reason": "let me"}))
    assert reply.json()["response_action"] == "errors"
    # The workflow's validator re-checks: sam asked for the run and cannot approve it.
    sam_view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "sam")
    views_before += 1
    reply = await slack_app.send(submission(sam_view, "U0SAM", {"reason": "mine"}))
    assert reply.status == 200

    async def self_approval() -> list[Call]:
        return fake_slack.of("chat.postEphemeral", slack_tenant.channel, user="U0SAM")

    refusal = (await eventually(self_approval))[0].args["text"]
    assert refusal == (
        "Your decision was refused: 'sam' requested this run and cannot approve its proposals"
    )
    # Nothing changed: no modal for the refused clicks, no update, no audit entry, no card edit.
    assert len(fake_slack.of("views.open")) == views_before
    state: RunState = await handle.query(AgentLoop.state)
    assert state.proposals[0].status == "awaiting_decision" and state.proposals[0].decisions == []
    assert await _no_update_accepted(handle)
    assert await chain_ok(db, slack_tenant.tenant_id) == audit_before
    assert fake_slack.of("chat.update", slack_tenant.channel) == []
    await handle.terminate("test done")


async def test_forged_stale_and_replayed_requests_are_refused(
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json
    import logging
    import time
    from urllib.parse import urlencode

    from tests.support.slack_requests import sign

    caplog.set_level(logging.WARNING, logger="charter.slack")

    handle = await _escalate(client, slack_tenant, "payables", "INV-1043")
    card = await card_for(fake_slack, slack_tenant.channel)
    views_before = len(fake_slack.of("views.open"))
    body = urlencode({"payload": json.dumps(click(card, "charter_approve", USERS["maya"]))})

    forged = await slack_app.post(body, sign(body, secret="not-the-signing-secret"))
    assert forged.status == 401
    tampered = sign(body)
    tampered_body = body.replace("U0MAYA", "U0SAM")
    assert (await slack_app.post(tampered_body, tampered)).status == 401
    stale = await slack_app.post(body, sign(body, timestamp=int(time.time()) - 10 * 60))
    assert stale.status == 401
    unsigned = await slack_app.post(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status == 401
    assert len(fake_slack.of("views.open")) == views_before  # none reached a listener

    headers = sign(body)
    assert (await slack_app.post(body, headers)).status == 200
    await _modal(fake_slack, views_before)
    replayed = await slack_app.post(body, headers)
    assert replayed.status == 401
    assert len(fake_slack.of("views.open")) == views_before + 1
    assert fake_slack.of("chat.postEphemeral", slack_tenant.channel) == []
    assert await _no_update_accepted(handle)
    # Every refusal is logged at warning with its reason, and nothing secret or private.
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert refusals.count("slack request refused: bad signature") == 2, refusals
    assert refusals.count("slack request refused: stale or missing timestamp") == 2, refusals
    assert any("replayed" in r for r in refusals), refusals
    assert "not-the-signing-secret" not in caplog.text and "U0MAYA" not in caplog.text
    assert headers["X-Slack-Signature"] not in caplog.text
    await handle.terminate("test done")


async def _update_events(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events
    )


async def test_quorum_of_two_distinct_slack_approvers(
    admin_dsn: str,
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    """A rule with `approvals_required: 2`, decided in Slack by two different people."""
    tenant = slack_tenant.tenant_id
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvals_required: 2\n")
    handle = await _escalate(client, slack_tenant, "payables", "INV-1044", requested_by="leo")
    card = await card_for(fake_slack, slack_tenant.channel)
    text = card.text()
    assert "*Approvals: 0 of 2* (nobody yet)" in text
    assert "`escalate-large-payments` (escalate, matched)" in text
    # One approver cannot amend a quorum away, so the card does not offer it.
    assert set(buttons(card)) == {"charter_approve", "charter_reject"}

    await _decide(slack_app, fake_slack, card, "charter_approve", "maya", {"reason": "Signed"})
    first = await _updated(fake_slack, card, "*Approvals: 1 of 2* (Maya Chen (CEO))")
    assert "Approved by *Maya Chen (CEO)* (maya)" in first.text() and "Executed" not in first.text()
    assert set(buttons(first)) == {"charter_approve", "charter_reject"}  # still waiting

    # The card is refreshed from the audit trail as the decision is recorded, a moment before
    # the workflow's update returns and the decision joins the run's state.
    async def recorded() -> RunState | None:
        state: RunState = await handle.query(AgentLoop.state)
        return state if state.proposals[0].decisions else None

    state = await eventually(recorded)
    assert state.proposals[0].status == "awaiting_decision"
    assert [d.approver for d in state.proposals[0].decisions] == ["maya"]
    assert await actions(db, tenant) == []

    # Maya again: refused to her alone; no modal, no update, no audit entry, no card edit.
    views, updates = len(fake_slack.of("views.open")), len(fake_slack.of("chat.update"))
    audit_before = await chain_ok(db, tenant)
    reply = await slack_app.send(click(card, "charter_approve", USERS["maya"]))
    assert reply.status == 200

    async def told() -> list[Call]:
        return fake_slack.of("chat.postEphemeral", slack_tenant.channel, user=USERS["maya"])

    [refusal] = await eventually(told)
    assert refusal.args["text"] == f"You have already decided on {state.proposals[0].exception_id}."
    assert len(fake_slack.of("views.open")) == views
    assert len(fake_slack.of("chat.update")) == updates
    assert await _update_events(handle) == 1
    assert await chain_ok(db, tenant) == audit_before

    # A second, different approver completes the quorum: the action executes, once.
    await _decide(slack_app, fake_slack, card, "charter_approve", "sam", {"reason": "Agreed"})
    result = await handle.result()
    assert result.proposals[0].status == "executed"
    assert [d.approver for d in result.proposals[0].decisions] == ["maya", "sam"]
    rows = await actions(db, tenant)
    assert [r["proposal_id"] for r in rows] == ["p1"]
    assert sorted(json.loads(rows[0]["auth"])["approvers"]) == ["maya", "sam"]
    final = await _updated(
        fake_slack,
        card,
        "*Approvals: 2 of 2* (Maya Chen (CEO), Sam Okafor (Finance lead))",
        "Executed",
    )
    assert "Approved by *Sam Okafor (Finance lead)* (sam)" in final.text()
    assert buttons(final) == {}
    assert len(fake_slack.of("chat.postEphemeral", slack_tenant.channel)) == 1
    await chain_ok(db, tenant)


async def test_no_amendment_is_offered_where_a_quorum_is_needed(
    admin_dsn: str,
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    """Outside bounds would be amendable, but a default quorum of two cannot be amended away."""
    tenant = slack_tenant.tenant_id
    default = "defaults:\n  min_confidence: 0.80\n"
    await adopt_variant(admin_dsn, tenant, default, default + "  approvals_required: 2\n")
    handle = await _escalate(client, slack_tenant, "payables", "INV-1043")
    card = await card_for(fake_slack, slack_tenant.channel)
    assert "*Approvals: 0 of 2* (nobody yet)" in card.text()
    assert set(buttons(card)) == {"charter_approve", "charter_reject"}
    # A click forged with the amend action id is refused, to the clicking user only.
    forged = click(card, "charter_approve", USERS["maya"])
    forged["actions"][0]["action_id"] = "charter_amend"
    views = len(fake_slack.of("views.open"))
    assert (await slack_app.send(forged)).status == 200

    async def told() -> list[Call]:
        return fake_slack.of("chat.postEphemeral", slack_tenant.channel, user=USERS["maya"])

    [refusal] = await eventually(told)
    assert refusal.args["text"] == "This exception cannot be turned into an amendment."
    assert len(fake_slack.of("views.open")) == views
    # The submission is checked again as its own request: an approve modal whose metadata is
    # forged to ask for an amendment is refused inside the modal, before any update.
    assert (await slack_app.send(click(card, "charter_approve", USERS["maya"]))).status == 200
    view = await _modal(fake_slack, views)
    meta = json.loads(view["private_metadata"])
    forged_view = {**view, "private_metadata": json.dumps({**meta, "a": True})}
    reply = await slack_app.send(
        submission(forged_view, USERS["maya"], {"reason": "ok", "max_amount": "999999"})
    )
    assert reply.status == 200
    assert reply.json()["response_action"] == "errors"
    assert "cannot be turned into an amendment" in json.dumps(reply.json()["errors"])
    assert await _no_update_accepted(handle)
    await handle.terminate("test done")


async def test_slack_approval_after_an_edit_is_for_the_edited_amount(
    admin_dsn: str,
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    """Maya approves with a lower amount (CLI); the card and sam's modal show what he approves."""
    tenant = slack_tenant.tenant_id
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvals_required: 2\n")
    handle = await _escalate(client, slack_tenant, "payables", "INV-1044", requested_by="leo")
    card = await card_for(fake_slack, slack_tenant.channel)
    receipt = await decide(handle, MAYA_EDITS)
    assert (receipt.approvals, receipt.approvals_required) == (1, 2)
    update = await _updated(
        fake_slack,
        card,
        "*Approved with an edit:* `schedule_payment` $12,000.00",
        "(proposed $14,800.00)",
        "*Approvals: 1 of 2* (Maya Chen (CEO))",
    )
    assert set(buttons(update)) == {"charter_approve", "charter_reject"}
    view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "sam")
    heading = view["blocks"][0]["text"]["text"]
    assert "$12,000.00" in heading and "(as edited)" in heading and "14,800" not in heading
    reply = await slack_app.send(submission(view, USERS["sam"], {"reason": "Agreed"}))
    assert reply.status == 200 and reply.body == ""
    result = await handle.result()
    ps = result.proposals[0]
    assert ps.status == "executed" and ps.executed is not None
    assert ps.executed.amount == Decimal("12000.00")
    rows = await actions(db, tenant)
    assert [json.loads(r["proposal"])["amount"] for r in rows] == ["12000.00"]
    await _updated(fake_slack, card, "*Approvals: 2 of 2*", "Executed")


async def test_rule_approver_roles_are_enforced_in_slack(
    admin_dsn: str,
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    """`approvers: [owner]` on the rule: sam (an approver, not an owner) is refused."""
    tenant = slack_tenant.tenant_id
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvers: [owner]\n")
    handle = await _escalate(client, slack_tenant, "payables", "INV-1044")
    card = await card_for(fake_slack, slack_tenant.channel)
    assert "*Who may approve:* members with the role owner" in card.text()
    state: RunState = await handle.query(AgentLoop.state)
    exception_id = state.proposals[0].exception_id
    views = len(fake_slack.of("views.open"))
    audit_before = await chain_ok(db, tenant)

    reply = await slack_app.send(click(card, "charter_approve", USERS["sam"]))
    assert reply.status == 200

    async def told() -> list[Call]:
        return fake_slack.of("chat.postEphemeral", slack_tenant.channel, user=USERS["sam"])

    [refusal] = await eventually(told)
    assert refusal.args["text"] == (
        f"{exception_id} needs an approver with the role owner; Sam Okafor (Finance lead) has "
        "approver."
    )
    assert len(fake_slack.of("views.open")) == views
    # Sam submitting a modal opened for maya is refused inside the modal, too.
    maya_view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "maya")
    reply = await slack_app.send(submission(maya_view, USERS["sam"], {"reason": "mine"}))
    assert reply.json()["response_action"] == "errors"
    assert "needs an approver with the role owner" in reply.json()["errors"]["reason"]
    assert await _no_update_accepted(handle)
    assert await chain_ok(db, tenant) == audit_before
    assert await actions(db, tenant) == []

    # The owner decides from the modal she opened.
    reply = await slack_app.send(submission(maya_view, USERS["maya"], {"reason": "Owner ok"}))
    assert reply.status == 200 and reply.body == ""
    assert (await handle.result()).proposals[0].status == "executed"
    final = await _updated(fake_slack, card, "Approved by *Maya Chen (CEO)*", "Executed")
    assert "Who may approve" not in final.text()


async def test_a_modal_opened_before_an_edit_signs_nothing(
    admin_dsn: str,
    client: Client,
    slack_worker: Worker,
    slack_app: SlackApp,
    fake_slack: FakeSlack,
    db: Database,
    slack_tenant: SlackTenant,
) -> None:
    """What is signed is what is shown: sam's modal showed $14,800; maya's edit to $12,000
    lands before he submits, so his submission signs nothing and he is told why."""
    tenant = slack_tenant.tenant_id
    await adopt_variant(admin_dsn, tenant, LARGE, LARGE + "    approvals_required: 2\n")
    handle = await _escalate(client, slack_tenant, "payables", "INV-1044", requested_by="leo")
    card = await card_for(fake_slack, slack_tenant.channel)
    view = await _modal_after_click(slack_app, fake_slack, card, "charter_approve", "sam")
    assert "$14,800.00" in view["blocks"][0]["text"]["text"]
    assert (await decide(handle, MAYA_EDITS)).approvals == 1
    reply = await slack_app.send(submission(view, USERS["sam"], {"reason": "Agreed"}))
    assert reply.status == 200

    async def told() -> str | None:
        said = [c.text() for c in fake_slack.of("chat.postEphemeral", slack_tenant.channel)]
        return next((t for t in said if "changed after they were shown" in t), None)

    assert await eventually(told)
    state = await handle.query(AgentLoop.state)
    assert [d.approver for d in state.proposals[0].decisions] == ["maya"]
    assert await actions(db, tenant) == []
    await handle.terminate("test over")
