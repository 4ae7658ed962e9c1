"""`charter exceptions list|show` and `charter decide`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from rich.table import Table

from charter.presentation.inert import inert, plain
from charter.presentation.report import (
    CAUSE_WORDS,
    exception_panel,
    money,
    reasoning_failure_title,
)
from charter.services import deciding
from charter.storage import runs
from charter_cli._arguments import add_json, add_member, add_tenant
from charter_cli._common import CliError, as_cli_errors, connected, console, print_json
from charter_cli._registration import Subcommands, command, command_group
from schemas import AmendmentRequest, Decision, DecisionReceipt, Proposal, ProposalEdit

#: What `charter decide` adds to a refusal that leaves nothing to decide.
_NOTHING_TO_DECIDE = (
    " Read it with `charter exceptions show`, re-run the agent, and close it with "
    "`charter exceptions dismiss`."
)


def register(sub: Subcommands) -> None:
    exc_sub = command_group(sub, "exceptions", help="list and show exceptions awaiting a human")
    ls = command(exc_sub, "list", cmd_list)
    add_tenant(ls)
    ls.add_argument("--all", action="store_true", help="include decided and expired ones")
    add_json(ls)
    show = command(exc_sub, "show", cmd_show)
    show.add_argument("exception_id")
    add_tenant(show)
    add_json(show)
    dismiss = command(exc_sub, "dismiss", cmd_dismiss)
    dismiss.add_argument("exception_id")
    add_tenant(dismiss)
    add_member(dismiss, "approver")
    dismiss.add_argument("--reason", default="", help="why, for the audit trail")
    _register_decide(sub)


def _register_decide(sub: Subcommands) -> None:
    decide = command(sub, "decide", cmd_decide)
    decide.add_argument("exception_id")
    decide.add_argument("outcome", choices=["approve", "reject"])
    add_tenant(decide)
    add_member(decide, "approver", "the approver (a member of the tenant with an approver role)")
    decide.add_argument("--reason", default="", help="why, for the audit trail")
    decide.add_argument(
        "--amend",
        action="store_true",
        help="also add a narrowly scoped allow rule so this class of exception "
        "no longer escalates (approve only)",
    )
    decide.add_argument("--max-amount", help="upper bound for the amendment (default: the amount)")
    decide.add_argument(
        "--amend-until",
        metavar="ISO8601",
        help="the amendment stops applying at this instant (e.g. 2027-03-31T00:00:00Z)",
    )
    decide.add_argument(
        "--amount",
        help="approve with an edit: the amount to approve instead (gated again before it runs)",
    )
    decide.add_argument(
        "--tolerance",
        action="append",
        metavar="FACT=FRACTION",
        help="approve with a tolerance: the approval still holds if FACT (e.g. invoice.amount) "
        "moves by at most FRACTION (0.05 or 5%%) of what is shown; signed with the decision; "
        "repeat for several facts",
    )


async def cmd_list(args: argparse.Namespace) -> int:
    """list open exceptions of a tenant"""
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        rows = await runs.list_exceptions(conn, args.tenant, status=None if args.all else "open")
    if args.json:
        print_json(rows)
        return 0
    table = Table(title=f"exceptions · {args.tenant}", title_justify="left")
    for col in ("id", "agent", "recommends", "amount", "why", "status", "expires"):
        table.add_column(col)
    for r in rows:
        if r["context"].get("kind") == "reasoning_failure":  # an unreadable reply: no proposal
            failure = r["context"].get("failure", {})
            table.add_row(
                r["exception_id"],
                r["agent"],
                f"({reasoning_failure_title(failure)})",
                "-",
                "the model stayed unavailable past its retry budget"
                if failure.get("kind") == "model_unavailable"
                else "the reply did not parse after one corrective retry",
                r["status"],
                r["expires_at"].strftime("%Y-%m-%d %H:%M"),
            )
            continue
        p, v = Proposal.model_validate(r["context"]["proposal"]), r["context"]["verdict"]
        table.add_row(
            r["exception_id"],
            r["agent"],
            plain(f"{p.action} → {p.counterparty or '-'}"),
            money(p.amount, p.currency),
            "; ".join(CAUSE_WORDS.get(c, c) for c in v["causes"]),
            r["status"],
            r["expires_at"].strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    """show one exception with its full context"""
    async with connected(args, temporal=False) as s, s.db.tenant(args.tenant) as conn:
        row = await runs.get_exception(conn, args.tenant, args.exception_id)
    if row is None:
        raise CliError(f"no exception {args.exception_id!r} for tenant {args.tenant!r}")
    if args.json:
        print_json(row)
        return 0
    console.print(exception_panel(row))
    return 0


def _decimal(flag: str, value: str | None) -> Decimal | None:
    try:
        return Decimal(value) if value else None
    except InvalidOperation:
        raise CliError(f"{flag} {value!r} is not a number") from None


async def cmd_dismiss(args: argparse.Namespace) -> int:
    """close an exception that holds an unreadable reasoner reply (no proposal)

    An unreadable reply escalates as an exception with no proposal to approve; once read, an
    approver closes it here. Nothing executes; the dismissal is audited.
    """
    async with connected(args, temporal=False) as s:
        with as_cli_errors(runs.NotDismissable):
            await deciding.dismiss(
                s.db, args.tenant, args.exception_id, member=args.approver, reason=args.reason
            )
    console.print(f"[green]dismissed[/] {args.exception_id} as {args.approver}; nothing executed")
    return 0


def build_decision(args: argparse.Namespace, proposal_id: str) -> Decision:
    if args.amend and args.outcome != "approve":
        raise CliError("--amend only goes with approve")
    if getattr(args, "amount", None) and args.outcome != "approve":
        raise CliError("--amount (approve with an edit) only goes with approve")
    amendment = None
    if args.amend:
        until = None
        if getattr(args, "amend_until", None):
            try:
                until = datetime.fromisoformat(args.amend_until)
            except ValueError:
                raise CliError(f"--amend-until {args.amend_until!r} is not ISO 8601") from None
            until = until if until.tzinfo else until.replace(tzinfo=UTC)
        amendment = AmendmentRequest(
            max_amount=_decimal("--max-amount", args.max_amount), expires_at=until
        )
    amount = _decimal("--amount", getattr(args, "amount", None))
    tolerance = _tolerance(getattr(args, "tolerance", None) or [])
    if tolerance and args.outcome != "approve":
        raise CliError("--tolerance only goes with approve")
    try:
        return Decision(
            proposal_id=proposal_id,
            approver=args.approver,
            outcome=args.outcome,
            reason=args.reason,
            amendment=amendment,
            edit=ProposalEdit(amount=amount) if amount is not None else None,
            tolerance=tolerance or None,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise CliError(f"invalid decision: {where}: {problem['msg']}") from None


def _tolerance(given: list[str]) -> dict[str, Decimal]:
    """`invoice.amount=0.05` or `invoice.amount=5%`, each fact once."""
    found: dict[str, Decimal] = {}
    for item in given:
        fact, sep, fraction = item.partition("=")
        if not sep or not fact.strip():
            raise CliError(f"--tolerance {item!r} is not FACT=FRACTION, e.g. invoice.amount=5%")
        text = fraction.strip()
        percent = text.endswith("%")
        value = _decimal("--tolerance", text.removesuffix("%"))
        if value is None:
            raise CliError(f"--tolerance {item!r} gives no fraction")
        if fact.strip() in found:
            raise CliError(f"--tolerance names {fact.strip()} twice")
        found[fact.strip()] = value / 100 if percent else value
    return found


async def cmd_decide(args: argparse.Namespace) -> int:
    """approve or reject an exception

    Send a decision to the waiting run (Temporal update `decide`).
    """
    async with connected(args) as s:
        assert s.client is not None
        try:
            pending = await deciding.awaiting(s.db, args.tenant, args.exception_id)
            decision = build_decision(args, pending.proposal_id)
            signing = await deciding.to_be_signed(s.db, args.tenant, pending.workflow_id, decision)
            if signing is not None:
                # What is signed is what is shown: these parameters, edits included, and
                # nothing else (an edit recorded meanwhile refuses the signature).
                console.print(plain(f"{decision.outcome}s: {_parameters_line(signing)}"))
                if decision.tolerance:
                    console.print(plain(f"holding while {_tolerance_line(decision.tolerance)}"))
            # Signed with the local key of `--as`: the workflow and the database accept only
            # a statement that member's registered key signed.
            receipt = await deciding.decide(
                s.db,
                s.client,
                args.tenant,
                pending.workflow_id,
                decision,
                folder=s.settings.member_key_folder,
                shown=deciding.shown_digest(signing) if signing is not None else None,
            )
        except deciding.NothingToDecide as exc:
            raise CliError(f"{exc}{_NOTHING_TO_DECIDE}") from None
        except deciding.DecisionRefused as exc:
            raise CliError(f"decision refused: {exc}") from None
        except deciding.DecisionNotSent as exc:
            raise CliError(str(exc)) from None
    console.print(_receipt_line(args.exception_id, receipt))
    return 0


def _parameters_line(p: Proposal) -> str:
    """The parameters signed, inertly: action, amount, counterparty and reference."""
    amount = money(p.amount, p.currency) if p.amount is not None else ""
    target = f" to {inert(p.counterparty)}" if p.counterparty else ""
    ref = f" (ref {inert(p.reference)})" if p.reference else ""
    return f"{p.action} {amount}{target}{ref}".replace("  ", " ")


def _tolerance_line(tolerance: dict[str, Decimal]) -> str:
    """What the approver lets move, as signed: `invoice.amount moves by at most 5%`."""
    return "; ".join(
        f"{fact} moves by at most {(fraction * 100).normalize():f}%"
        for fact, fraction in sorted(tolerance.items())
    )


def _receipt_line(exception_id: str, receipt: DecisionReceipt) -> str:
    note = (
        f"; constitution amended to v{receipt.amendment_version}"
        if receipt.amendment_version
        else ""
    )
    if receipt.status == "awaiting_decision":
        note += f"; {receipt.approvals} of {receipt.approvals_required} approvals, still waiting"
    done = {"approve": "approved", "reject": "rejected"}[receipt.outcome]
    return f"[green]{done}[/] {exception_id} as {receipt.approver}{note}"
