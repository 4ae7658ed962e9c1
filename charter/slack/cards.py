"""Block Kit for exceptions: the card in the channel and the decision modal.

Everything the agent observed (vendor names, invoice memos, the model's rationale) is
untrusted text: it is escaped so a memo cannot ping `<!channel>` or hide a link, and
truncated to Slack's limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from charter.governance import approvals
from charter.governance.amendments import AMENDABLE_CAUSES
from charter.presentation.inert import inert
from charter.presentation.report import CAUSE_WORDS, invoice_label, money
from charter.storage.runs import proposal_digest
from charter.storage.slack_cards import CardState
from schemas import Proposal, Verdict

APPROVE, REJECT, AMEND = "charter_approve", "charter_reject", "charter_amend"
ACTIONS = (APPROVE, REJECT, AMEND)
MODAL = "charter_decision"
REASON, CONFIRM, MAX_AMOUNT = "reason", "confirm_amount", "max_amount"

_SECTION_LIMIT = 2900


class ButtonValue(BaseModel):
    """What a card's button carries back: which exception, never who or what to decide."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="tenant id")
    e: str = Field(pattern=r"^ex-[0-9a-f]{10}$", description="exception id")


class ModalMetadata(ButtonValue):
    """Carried through the modal in `private_metadata` (Slack returns it untouched)."""

    o: Literal["approve", "reject"] = Field(description="outcome")
    a: bool = Field(description="with an amendment")
    c: str = Field(max_length=40, description="channel of the card")
    m: str = Field(max_length=40, description="ts of the card")
    d: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="digest of the parameters the modal showed: what the decision must sign",
    )


#: mrkdwn's formatting marks in untrusted text, replaced by look-alikes that format nothing
#: (a backtick would also close the code span a reference is shown in).
_MARKS = str.maketrans({"`": "\u02cb", "*": "\u2217", "~": "\u223c"})
#: An underscore that could open or close italics: one at either edge of a word (inside a
#: word, as in `schedule_payment`, mrkdwn formats nothing).
_ITALIC_MARK = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def esc(text: Any, limit: int = _SECTION_LIMIT) -> str:
    """Untrusted text made inert for mrkdwn, its length bounded: control characters and
    terminal escapes neutralised; `&`, `<`, `>` escaped (no `<!channel>`, `<@U…>` or
    `<url|label>`); formatting marks replaced; bare URLs broken so Slack does not link them."""
    s = inert(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").translate(_MARKS)
    s = _ITALIC_MARK.sub("\u02cd", s)
    s = re.sub(r"(?i)([a-z][a-z0-9+.-]*):(?=//)", "\\1:\u200b", s)
    # A bare domain (`www.evil.example`) is linked too: break each of its dots.
    return re.sub(r"(?i)(?<=[a-z0-9])\.(?=[a-z])", ".\u200b", s)


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def run_url(ui_url: str, namespace: str, workflow_id: str, run_id: str | None = None) -> str:
    base = f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
    return (
        base
        + quote(workflow_id, safe="")
        + (f"/{quote(run_id, safe='')}/history" if run_id else "")
    )


def is_irreversible(state: CardState) -> bool:
    return any("irreversible" in v.get("causes", []) for v in _verdicts(state))


def is_reasoning_failure(state: CardState) -> bool:
    """The reasoner's reply could not be read: an exception with no proposal (`p0`)."""
    return state.context.get("kind") == "reasoning_failure" or "verdict" not in state.context


def amendable(state: CardState) -> bool:
    # The same limits `charter.governance.amendments.check_amendable` enforces, so the card never
    # offers a button whose every click is refused.
    if is_reasoning_failure(state) or approvals_required(state) > 1:
        return False
    causes = set(state.context["verdict"].get("causes", []))
    p = state.context["proposal"]
    return bool(causes) and causes <= AMENDABLE_CAUSES and bool(p.get("counterparty"))


def _verdicts(state: CardState) -> list[dict[str, Any]]:
    """The verdicts an approval must satisfy: the original, and the edited one after an edit
    (as `charter.governance.approvals` combines them)."""
    if is_reasoning_failure(state):
        return []
    out = [state.context["verdict"]]
    if state.edit is not None:
        out.append(state.edit["verdict"])
    return out


def approved_proposal(state: CardState) -> dict[str, Any]:
    """What an approval approves: the edited parameters after an edit, else the proposal."""
    chosen: dict[str, Any] = (
        state.edit["proposal"] if state.edit is not None else state.context["proposal"]
    )
    return chosen


def shown_digest(state: CardState) -> str:
    """The digest of the parameters the modal shows (`approved_proposal`)."""
    return proposal_digest(Proposal.model_validate(approved_proposal(state)))


def verdicts(state: CardState) -> tuple[Verdict | None, Verdict | None]:
    """The gate's verdicts, typed: on the proposal, and on the edited parameters after an edit."""
    if is_reasoning_failure(state):
        return None, None
    edited = Verdict.model_validate(state.edit["verdict"]) if state.edit is not None else None
    return Verdict.model_validate(state.context["verdict"]), edited


def ballots(state: CardState) -> list[approvals.Ballot]:
    return [
        approvals.Ballot(d.approver, "approve" if d.outcome == "approve" else "reject")
        for d in state.decisions
    ]


def approvals_required(state: CardState) -> int:
    """The quorum, as the rule book counts it."""
    return approvals.required(*verdicts(state))


def role_requirements(state: CardState) -> list[list[str]]:
    """Per matched rule that names `approvers`: an approver holds one role of each list."""
    return approvals.role_requirements(*verdicts(state))


def roles_text(requirements: list[list[str]]) -> str:
    return approvals.roles_text(requirements, either=" or ")


def recommendation(p: dict[str, Any]) -> str:
    amount = money(p.get("amount"), p.get("currency", "USD")) if p.get("amount") is not None else ""
    target = f" to {esc(p['counterparty'], 200)}" if p.get("counterparty") else ""
    ref = f" (ref `{esc(p['reference'], 64)}`)" if p.get("reference") else ""
    return f"`{esc(p['action'], 64)}` {amount}{target}{ref}".replace("  ", " ")


def _bold(text: str) -> str:
    return f"*{text}*"


def observed_lines(
    seen: dict[str, Any],
    escape: Callable[[Any, int], str] = esc,
    strong: Callable[[str], str] = _bold,
) -> list[str]:
    """What the agent observed, one line per record: untrusted text through `escape` (mrkdwn
    by default; the web inbox passes its own) and the warning through `strong`."""
    lines: list[str] = []
    inv, ven, cam, pay = (seen.get(k) for k in ("invoice", "vendor", "campaign", "payroll"))
    if inv:
        lines.append(
            f"Invoice {escape(invoice_label(inv), 140)}: {money(inv['amount'])} "
            f"due {inv['due_date']}, "
            f"bank shows {money(inv['amount_paid'])} paid. Memo: “{escape(inv['memo'], 500)}”"
        )
    if ven:
        lines.append(
            f"Vendor {escape(ven['name'], 200)}: "
            + ("verified" if ven["verified"] else strong("NOT verified"))
        )
    if cam:
        lines.append(
            f"Campaign {escape(cam['name'], 200)} on {escape(cam['platform'], 40)}: daily budget "
            f"{money(cam['daily_budget'])}, ROAS {float(cam['roas']):.2f}"
        )
    if pay:
        lines.append(
            f"Payroll {escape(pay['period'], 60)}: {pay['employee_count']} employees, "
            f"{money(pay['total'])}, pays {pay['pay_date']}"
        )
    if seen.get("total_cash") is not None:
        lines.append(f"Cash across accounts: {money(seen['total_cash'])}")
    return lines


def why_lines(p: dict[str, Any], v: dict[str, Any]) -> list[str]:
    lines = []
    for cause in v.get("causes", []):
        words = CAUSE_WORDS.get(cause, cause)
        if cause == "below_confidence" and v.get("threshold") is not None:
            words += f": confidence {float(p['confidence']):.2f} &lt; threshold {float(v['threshold']):.2f}"
        if cause == "irreversible":
            words += ": it cannot be undone, so it always needs a human"
        if cause == "citation_mismatch":
            words += citation_detail(v.get("citations") or {})
        lines.append("• " + words)
    return lines or ["• " + esc(v.get("explanation", ""), 500)]


def citation_detail(check: dict[str, Any]) -> str:
    """Which citations were wrong: the model's ids are untrusted text, so they are escaped."""
    parts = []
    if check.get("unknown"):
        ids = ", ".join(f"`{esc(r, 80)}`" for r in check["unknown"][:10])
        parts.append(f"it cites {ids}, which the constitution does not have")
    if check.get("missing"):
        ids = ", ".join(f"`{esc(r, 80)}`" for r in check["missing"][:10])
        parts.append(f"it does not cite {ids}, which decided this")
    return (": " + "; ".join(parts)) if parts else ""


def rule_lines(v: dict[str, Any], titles: dict[str, str]) -> list[str]:
    """Matched rules with their effect, then the other rules evaluated for this action."""
    matched = v.get("matched", [])
    lines = [
        f"• `{esc(m['rule_id'], 80)}` ({m['effect']}, matched): {esc(m['title'], 300)}"
        for m in matched
    ]
    if not any(m["effect"] == "allow" for m in matched):
        lines.append("• No rule allows this action.")
    seen = {m["rule_id"] for m in matched}
    lines += [
        f"• `{esc(r, 80)}` (evaluated, did not match): {esc(titles.get(r, ''), 300)}"
        for r in v.get("evaluated", [])
        if r not in seen
    ]
    lines += [f"• `{esc(e['rule_id'], 80)}` could not be evaluated" for e in v.get("errors", [])]
    return lines


def status_lines(state: CardState) -> list[str]:
    required = approvals_required(state)
    approved = [d for d in state.decisions if d.outcome == "approve"]
    rejections = [d for d in state.decisions if d.outcome == "reject"]
    lines: list[str] = []
    for d in approved:
        line = f":white_check_mark: Approved by *{esc(d.display_name, 120)}* ({d.approver}) at {when(d.decided_at)}"
        if d.reason:
            line += f": “{esc(d.reason, 500)}”"
        if d.amendment_version:
            line += f"\n:scroll: Constitution amended to v{d.amendment_version}: this class of exception is now allowed."
        lines.append(line)
    for d in rejections:
        line = f":no_entry: Rejected by *{esc(d.display_name, 120)}* ({d.approver}) at {when(d.decided_at)}"
        if d.reason:
            line += f": “{esc(d.reason, 500)}”"
        lines.append(line)
    if required > 1:
        names = ", ".join(esc(d.display_name, 120) for d in approved) or "nobody yet"
        lines.insert(0, f"*Approvals: {len(approved)} of {required}* ({names})")
    if state.edit is not None:
        original = state.context["proposal"]
        lines.insert(
            0,
            f":pencil2: *Approved with an edit:* {recommendation(state.edit['proposal'])} "
            f"(proposed {money(original.get('amount'), original.get('currency', 'USD'))}). "
            "Approvals are for the edited parameters.",
        )
    requirements = role_requirements(state)
    if requirements and state.status == "open":
        lines.insert(0, f"*Who may approve:* members with the role {esc(roles_text(requirements))}")
    if state.executed_reference:
        lines.append(
            f":moneybag: Executed (connector reference `{esc(state.executed_reference, 80)}`)."
        )
    elif state.status == "expired":
        lines.append(
            f":hourglass: Expired at {when(state.closed_at or state.expires_at)} without a "
            "decision. *Nothing was executed.*"
        )
    elif state.status == "rejected":
        lines.append("Nothing was executed.")
    elif state.closed_unstable:
        lines.append(
            ":warning: *Closed without executing:* the facts moved again after every "
            f"approval. {esc(state.closed_unstable, 1500)}"
        )
    elif state.status == "approved":
        lines.append(":gear: Executing…")
    else:
        lines.append(
            f":hourglass_flowing_sand: Awaiting a decision until {when(state.expires_at)}."
        )
    return lines


def card_text(state: CardState) -> str:
    """The notification fallback (and what screen readers read)."""
    if is_reasoning_failure(state):
        unread = (state.context.get("failure") or {}).get("kind") == "books_unavailable"
        what = "the books could not be read" if unread else "the reasoner's reply could not be read"
        return (
            f"{state.exception_id} ({esc(state.tenant_name, 120)}, {state.agent}): {what}. "
            "Nothing was proposed or executed."
        )
    p = state.context["proposal"]
    verb = {"open": "needs a decision", "approved": "approved", "rejected": "rejected"}.get(
        state.status, state.status
    )
    return (
        f"{state.exception_id} ({esc(state.tenant_name, 120)}, {state.agent}) {verb}: "
        f"{p['action']} {money(p.get('amount'), p.get('currency', 'USD'))}"
    )


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_LIMIT]}}


def _header(state: CardState) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": f"Exception {state.exception_id} · {state.tenant_name} · {state.agent}"[:150],
        },
    }


def reasoning_failure_blocks(
    state: CardState, *, ui_url: str, namespace: str, run_id: str | None
) -> list[dict[str, Any]]:
    """No proposal, so nothing to approve: what went wrong, and where to look. No buttons."""
    failure = state.context.get("failure") or {}
    problems = [f"• {esc(p, 300)}" for p in (failure.get("problems") or [])[:5]]
    replies = failure.get("raw_replies") or []
    link = run_url(ui_url, namespace, state.workflow_id, run_id)
    headline = (
        f":warning: *The books could not be read.* {esc(failure.get('message', ''), 500)}. "
        "Charter retried within its budget; nothing was proposed, gated or executed."
        if failure.get("kind") == "books_unavailable"
        else ":warning: *The reasoner's reply could not be read.* Charter asked once more and "
        "still got no proposals it could check, so nothing was proposed, gated or executed."
    )
    blocks: list[dict[str, Any]] = [_header(state), _section(headline)]
    if problems:
        blocks.append(_section("*What was wrong with it:*\n" + "\n".join(problems)))
    if replies:
        blocks.append(
            _section(f"*Its last reply (verbatim, truncated):*\n“{esc(replies[-1], 800)}”")
        )
    blocks += [
        _section(
            "*What to do:* review the run and its raw reply, then start the run again or handle "
            "the work by hand. There is no proposal here to approve or reject.\n"
            f"`charter exceptions show {state.exception_id} --tenant {state.tenant_id}`"
        ),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Open the run in the Temporal UI>"}],
        },
    ]
    return blocks


def card_blocks(
    state: CardState, *, ui_url: str, namespace: str, run_id: str | None
) -> list[dict[str, Any]]:
    if is_reasoning_failure(state):
        return reasoning_failure_blocks(state, ui_url=ui_url, namespace=namespace, run_id=run_id)
    ctx = state.context
    p, v = ctx["proposal"], ctx["verdict"]

    section = _section
    blocks: list[dict[str, Any]] = [
        _header(state),
        section(
            f"*Recommends:* {recommendation(p)}, confidence {float(p['confidence']):.2f}\n"
            f"*Rationale:* {esc(p.get('rationale', ''), 1500)}"
        ),
        section("*Observed:*\n" + "\n".join(observed_lines(ctx.get("observed", {})))),
        section("*Rules that apply:*\n" + "\n".join(rule_lines(v, state.rule_titles))),
        section("*Why it could not act alone:*\n" + "\n".join(why_lines(p, v))),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"Constitution v{v['constitution_version']} (`{v['constitution_hash'][:12]}`) · "
                        f"<{run_url(ui_url, namespace, state.workflow_id, run_id)}|Open the run in the Temporal UI>"
                    ),
                }
            ],
        },
        {"type": "divider"},
        section("\n".join(status_lines(state))),
    ]
    if state.status == "open" and not approvals.quorum_met(ballots(state), *verdicts(state)):
        value = ButtonValue(t=state.tenant_id, e=state.exception_id).model_dump_json()
        buttons: list[dict[str, Any]] = [
            {
                "type": "button",
                "action_id": APPROVE,
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": value,
            },
            {
                "type": "button",
                "action_id": REJECT,
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": value,
            },
        ]
        if amendable(state):
            buttons.append(
                {
                    "type": "button",
                    "action_id": AMEND,
                    "text": {"type": "plain_text", "text": "Approve and always allow this"},
                    "value": value,
                }
            )
        blocks.append({"type": "actions", "block_id": "decide", "elements": buttons})
    return blocks


def decision_modal(state: CardState, meta: ModalMetadata) -> dict[str, Any]:
    # After an edit, further approvals approve the edited parameters: show (and confirm) those.
    p = approved_proposal(state)
    title = "Approve" if meta.o == "approve" else "Reject"
    edited = " (as edited)" if state.edit is not None else ""
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{title}* {recommendation(p)}{edited} ({state.exception_id})",
            },
        },
        {
            "type": "input",
            "block_id": REASON,
            "label": {"type": "plain_text", "text": "Reason (kept in the audit trail)"},
            "element": {
                "type": "plain_text_input",
                "action_id": REASON,
                "multiline": True,
                "max_length": 2000,
            },
        },
    ]
    if meta.o == "approve" and is_irreversible(state):
        blocks.append(
            {
                "type": "input",
                "block_id": CONFIRM,
                "label": {
                    "type": "plain_text",
                    "text": "This cannot be undone. Type the amount to confirm",
                },
                "hint": {
                    "type": "plain_text",
                    "text": f"Type {plain_amount(p.get('amount'))} exactly.",
                },
                "element": {"type": "plain_text_input", "action_id": CONFIRM},
            }
        )
    if meta.a:
        blocks.append(
            {
                "type": "input",
                "block_id": MAX_AMOUNT,
                "optional": True,
                "label": {
                    "type": "plain_text",
                    "text": "Always allow up to (default: this amount)",
                },
                "element": {"type": "plain_text_input", "action_id": MAX_AMOUNT},
            }
        )
    return {
        "type": "modal",
        "callback_id": MODAL,
        "private_metadata": meta.model_dump_json(),
        "title": {"type": "plain_text", "text": f"{title} {state.exception_id}"[:24]},
        "submit": {"type": "plain_text", "text": title},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def plain_amount(amount: Any) -> str:
    return f"{Decimal(str(amount)):.2f}" if amount is not None else "0.00"


def parse_amount(text: str) -> Decimal | None:
    """What a person types: `96400`, `96,400.00`, `$96,400`. None if it is not a number."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
