"""While an exception waits: reminders in the card's thread, the backup approver called in
after the configured delay, and at expiry a card saying nothing was executed.

Runs on Temporal's time-skipping test server: days pass in seconds. The notifier measures
the backup delay on Temporal's clock, so time skipping moves it too.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from activities import Deps
from charter.config.settings import Settings
from charter.demo.seed import enroll_members, seed
from charter.reasoners import OfflineReasoner
from charter.storage import Database
from charter.storage import slack_cards as store
from schemas import Decision, RunState
from tests.support.running import start, until_stage
from tests.support.signing import decide
from tests.support.slack_requests import buttons, card_for, configure, notifier
from tests.support.standins.slack_web_api import FakeSlack
from tests.support.vault import session_vault
from worker import build_worker

QUEUE = "charter-slack-time-skipping"


async def _tenant(db: Database, admin_dsn: str) -> str:
    tenant_id = f"w-{uuid.uuid4().hex[:10]}"
    await seed(
        db, tenant_id, template="acme", actor="test", keys=session_vault().keys, admin_dsn=admin_dsn
    )
    await enroll_members(
        admin_dsn, tenant_id, template="acme", actor="test", folder=Settings().member_key_folder
    )
    return tenant_id


async def test_reminders_backup_approver_and_expiry(
    time_env: WorkflowEnvironment, db: Database, admin_dsn: str, fake_slack: FakeSlack
) -> None:
    tenant = await configure(
        db, await _tenant(db, admin_dsn), backup="sam", backup_after=timedelta(days=2)
    )
    deps = Deps(
        credentials=session_vault(),
        db=db,
        reasoner=OfflineReasoner(),
        notifier=notifier(db, fake_slack),
    )
    async with build_worker(time_env.client, deps, QUEUE):
        handle = await start(
            time_env.client, tenant.tenant_id, "payables", task_queue=QUEUE, focus=["INV-1043"]
        )
        result = await handle.result()  # seven days, skipped
    assert result.proposals[0].status == "expired" and result.proposals[0].action is None

    card = await card_for(fake_slack, tenant.channel)
    thread = [
        c.args["text"]
        for c in fake_slack.of("chat.postMessage", tenant.channel, thread_ts=card.response["ts"])
    ]
    reminders = [t for t in thread if t.startswith(":alarm_clock: Reminder")]
    backups = [t for t in thread if "backup approver" in t]
    # Six daily reminders before the seven-day deadline, in the card's thread.
    assert len(reminders) == 6
    assert "still awaiting a decision" in reminders[0] and "(in 6d" in reminders[0]
    # The backup approver is called in once, at the first reminder after two days.
    assert backups == [
        f":rotating_light: <@U0SAM>, you are the backup approver: "
        f"{result.proposals[0].exception_id} has waited 2d without a decision."
    ]
    assert thread.index(backups[0]) == thread.index(reminders[1]) + 1
    # At expiry: the card says that nothing was executed, and offers no more buttons.
    assert thread[-1] == ":hourglass: Expired without a decision. Nothing was executed."
    final = fake_slack.of("chat.update", tenant.channel, ts=card.response["ts"])[-1]
    assert "without a decision. *Nothing was executed.*" in final.text()
    assert buttons(final) == {}
    async with db.tenant(tenant.tenant_id) as conn:
        assert result.proposals[0].exception_id is not None
        row = await store.get_card(conn, tenant.tenant_id, result.proposals[0].exception_id)
    assert row is not None and row.backup_notified_at is not None


async def test_a_card_that_failed_to_post_is_posted_at_the_next_reminder(
    time_env: WorkflowEnvironment, db: Database, admin_dsn: str, fake_slack: FakeSlack
) -> None:
    tenant = await configure(db, await _tenant(db, admin_dsn))
    deps = Deps(
        credentials=session_vault(),
        db=db,
        reasoner=OfflineReasoner(),
        notifier=notifier(db, fake_slack),
    )
    fake_slack.failing.add("chat.postMessage")
    try:
        async with build_worker(time_env.client, deps, QUEUE):
            handle = await start(
                time_env.client,
                tenant.tenant_id,
                "payables",
                task_queue=QUEUE,
                focus=["INV-1043"],
                decision_timeout=timedelta(hours=3),
                reminder_interval=timedelta(hours=1),
            )
            # Slack is down at escalation: the run still escalates, nothing is lost.
            state: RunState = await until_stage(handle, "awaiting_decision")
            assert fake_slack.of("chat.postMessage", tenant.channel) == []
            fake_slack.failing.clear()
            await time_env.sleep(timedelta(minutes=70))
            card = await card_for(fake_slack, tenant.channel)
            assert fake_slack.of("chat.postMessage", tenant.channel, thread_ts=card.response["ts"])
            await decide(
                handle,
                Decision(
                    proposal_id=state.proposals[0].proposal.proposal_id,
                    approver="maya",
                    outcome="approve",
                    reason="ok",
                ),
            )
            assert (await handle.result()).proposals[0].status == "executed"
    finally:
        fake_slack.failing.clear()
    tops = [
        c for c in fake_slack.of("chat.postMessage", tenant.channel) if "thread_ts" not in c.args
    ]
    assert len(tops) == 1  # posted once, late, never twice
    final = fake_slack.of("chat.update", tenant.channel, ts=card.response["ts"])[-1]
    assert "Approved by *Maya Chen (CEO)*" in final.text() and "Executed" in final.text()
