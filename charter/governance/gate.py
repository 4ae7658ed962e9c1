"""The gate: a pure, deterministic judgement of a proposal against the pinned constitution.

Runs inside the workflow, so it must not do I/O, read clocks or use randomness: time comes
in as an argument (by default the instant the observation was taken, which is in history
and lets a backtest reproduce the verdict). The reasoner's citations are advisory; this
evaluation is the authority, and a citation that does not match it blocks autonomy.

Precedence (docs/architecture.md): deny > escalate > allow. No allow rule means outside bounds and
escalation; confidence below the applicable threshold escalates; an irreversible action
always escalates, whatever the rules say. A rule that cannot be evaluated fails closed.
"""

from __future__ import annotations

import json
import json.encoder
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cel

from charter.governance import bare_amounts, money, spend
from charter.governance.exchange import Rates
from charter.governance.facts import facts_for
from schemas import (
    CitationCheck,
    Constitution,
    ConstitutionDocument,
    EscalationCause,
    LimitBreach,
    Observation,
    Outcome,
    Proposal,
    Rule,
    RuleError,
    RuleMatch,
    Verdict,
)

_json_string = json.encoder.encode_basestring_ascii
_programs: dict[str, Any] = {}
_fields: dict[str, list[tuple[str, list[str]]]] = {}
_FIELD = re.compile(r"\b([a-z_]+)\.([A-Za-z_]\w*)")


def _program(source: str) -> Any:
    # Compiling is pure; caching by source keeps the gate fast for long constitutions.
    program = _programs.get(source)
    if program is None:
        program = _programs[source] = cel.compile(source)
    return program


def _context(facts: dict[str, Any], reads: dict[str, frozenset[str] | None]) -> Any:
    """The facts the rules read, as CEL values, converted once per proposal, with the
    `spend.<dimension>(window)` functions. Handing the whole dict to every rule's `execute`
    converts all of it (accounts, the invoice, the vendor...) once per rule, which cost more
    than the rules themselves; converting only what the live rules read halves the rest. A
    variable no fact provides stays undefined, and the rule reading it fails closed.

    A map the rules only ever read field by field (`invoice.amount`, `has(invoice.memo)`)
    goes in with just those fields: selecting a field, or testing for it, gives the same
    result and the same error on the smaller map, and converting a map costs per value."""
    variables: dict[str, Any] = {}
    for name, fields in reads.items():
        if name not in facts:
            continue
        value = facts[name]
        if fields is not None and type(value) is dict:
            value = {key: v for key, v in value.items() if key in fields}
        variables[name] = value
    return cel.Context(variables=variables, functions=spend.CEL_FUNCTIONS)


_reads: dict[tuple[str, ...], dict[str, frozenset[str] | None]] = {}
#: A field selected right after a mention: `.name`, not followed by a call's parenthesis.
_SELECTED = re.compile(r"\s*\.\s*([A-Za-z_]\w*)(?!\w)(?!\s*\()")


def _fields_read(source: str, name: str) -> frozenset[str] | None:
    """The fields of `name` a condition selects, if it uses `name` in no other way; None
    when any mention of it is something else (indexing, a macro or method on it, the whole
    map compared or passed on, a mention inside a string): then the rule gets all of it."""
    fields: set[str] = set()
    for mention in re.finditer(rf"\b{re.escape(name)}\b", source):
        selected = _SELECTED.match(source, mention.end())
        if selected is None:
            return None
        fields.add(selected.group(1))
    return frozenset(fields)


def _reads_of(live: list[Rule]) -> dict[str, frozenset[str] | None]:
    """Each variable the live rules read, with the fields they select (None: all of it)."""
    key = tuple(rule.when for rule in live)
    found = _reads.get(key)
    if found is None:
        merged: dict[str, frozenset[str] | None] = {}
        for source in key:
            for name, _ in _looked_at(source):
                fields = _fields_read(source, name)
                if name in merged:
                    before = merged[name]
                    fields = None if before is None or fields is None else before | fields
                merged[name] = fields
        found = _reads[key] = merged
    return found


def _looked_at(source: str) -> list[tuple[str, list[str]]]:
    """The variables of a condition, sorted, each with the fields it reads (parsed once)."""
    shown = _fields.get(source)
    if shown is None:
        pairs = _FIELD.findall(source)
        shown = _fields[source] = [
            (name, [key for var, key in pairs if var == name])
            for name in sorted(_program(source).variables())
        ]
    return shown


def _why(rule: Rule, facts: dict[str, Any]) -> str:
    """The observed values a condition looked at, so a reader sees why it matched."""
    shown: dict[str, Any] = {}
    for name, keys in _looked_at(rule.when):
        value = facts.get(name)
        if isinstance(value, dict):
            for key in keys:
                if key in value:
                    shown[f"{name}.{key}"] = value[key]
        elif isinstance(value, bool | int | float | str):
            shown[name] = value
    return ", ".join(f"{k}={_shown(v)}" for k, v in shown.items())


def _shown(value: Any) -> str:
    """`json.dumps(value)`, without the encoder's slow path for numbers (same text)."""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)
    if type(value) is str:
        return _json_string(value)  # what `json.dumps` returns for a str (ensure_ascii)
    return json.dumps(value)


def _explain(outcome: Outcome, causes: list[EscalationCause], **ctx: Any) -> str:
    if outcome == "deny":
        if not ctx["deny_rules"]:
            return "Denied: " + "; ".join(spend.describe(b) for b in ctx["limits"]) + "."
        return "Denied by " + ", ".join(ctx["deny_rules"]) + "."
    if outcome == "execute":
        return (
            f"Allowed by {', '.join(ctx['allow_rules'])} at confidence "
            f"{ctx['confidence']:.2f} (threshold {ctx['threshold']:.2f}); reversible."
        )
    words = {
        "unknown_action": "the action type is not declared by the constitution",
        "outside_bounds": "outside bounds: no rule allows it",
        "below_confidence": (
            f"confidence {ctx['confidence']:.2f} is below the threshold {ctx['threshold']:.2f}"
        ),
        "irreversible": "the action is irreversible, so a human must approve it",
        "escalation_rule": "a rule requires human review ("
        + ", ".join(ctx["escalate_rules"])
        + ")",
        "rule_error": "a rule could not be evaluated, so the gate fails closed",
        "citation_mismatch": "the proposal's citations do not match the constitution ("
        + ctx["citation_note"]
        + ")",
        "limit_exceeded": "; ".join(spend.describe(b) for b in ctx["limits"]),
    }
    text = "Escalated: " + "; ".join(words[c] for c in causes) + "."
    if ctx["approvals_required"] > 1:
        text += f" Needs {ctx['approvals_required']} distinct approvers."
    return text


def check_citations(
    constitution: Constitution, proposal: Proposal, decisive: list[str], *, any_of: bool = False
) -> CitationCheck:
    """Unknown citations, citations of rules that cannot apply, and decisive rules not cited.

    With `any_of` (several allow rules matched), citing one of them is enough: each alone
    would have allowed the action. Citing every rule of the constitution is no shortcut: a
    rule of another action type cannot have been evaluated for this one.
    """
    rules = {rule.id: rule for rule in constitution.document.rules}
    cited = list(dict.fromkeys(proposal.citations))
    missing = [r for r in decisive if r not in cited]
    if any_of and len(missing) < len(decisive):
        missing = []
    inapplicable = [
        c
        for c in cited
        if c in rules
        and proposal.action not in rules[c].applies_to
        and "*" not in rules[c].applies_to
    ]
    return CitationCheck(
        cited=cited,
        unknown=[c for c in cited if c not in rules],
        missing=missing,
        inapplicable=inapplicable,
    )


def _citation_note(check: CitationCheck) -> str:
    parts = []
    if check.unknown:
        parts.append("cites unknown rule(s) " + ", ".join(check.unknown))
    if check.missing:
        parts.append("does not cite decisive rule(s) " + ", ".join(check.missing))
    if check.inapplicable:
        parts.append(
            "cites rule(s) that cannot apply to this action " + ", ".join(check.inapplicable)
        )
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Findings:
    """What the live rules said about one proposal: the matches by effect, the errors, and
    the confidence threshold that applies."""

    matched: list[RuleMatch]
    errors: list[RuleError]
    deny_rules: list[str]
    escalations: list[RuleMatch]
    escalate_rules: list[str]
    allows: list[RuleMatch]
    #: Errors of deny and escalate rules: they might have matched, so they escalate.
    blocking_errors: list[RuleError]
    threshold: float


@dataclass(frozen=True, slots=True)
class _Judgement:
    outcome: Outcome
    causes: list[EscalationCause]
    citations: CitationCheck
    limits: list[LimitBreach]
    approvals_required: int = 1
    approver_roles: list[list[str]] = field(default_factory=list)


def evaluate(
    constitution: Constitution,
    proposal: Proposal,
    observation: Observation,
    earlier: Sequence[Proposal] = (),
    *,
    now: datetime | None = None,
    with_limits: bool = True,
    currency_law: bool = True,
    limits_convert: bool = True,
    cash_in_currency: bool = True,
) -> Verdict:
    """Judge one proposal.

    `earlier`: proposals of the same run gated before this one and not denied, so rules can
    see what the run already commits (`run.*` facts). `now` decides rule expiry; default:
    when the observation was made. `with_limits=False` judges by the rules alone (the act
    activity enforces limits itself, by reservation). `currency_law=False` judges as the
    gate did before bare numbers had a currency (runs recorded before then replay so).
    `limits_convert=False` counts only each limit's own currency, as limits did before they
    converted with the observation's rates (runs recorded before then replay so).
    `cash_in_currency=False` counts every account as cash (`total_cash`), as the gate did
    before cash was per currency (runs recorded before then replay so).
    """
    document = constitution.document
    action_type = document.action_types.get(proposal.action)
    if action_type is None:
        return _denied_before_rules(
            constitution,
            proposal,
            "unknown_action",
            f"Denied: action type {proposal.action!r} is not declared by "
            f"constitution v{constitution.version}.",
        )
    refusal = _refuse_money(proposal, observation)
    if refusal is not None:
        cause, why = refusal
        return _denied_before_rules(constitution, proposal, cause, f"Denied: {why}.")
    at = now or observation.observed_at
    evaluated, expired, live = _live_rules(document.rules, proposal.action, at)
    found = _findings(
        constitution, live, proposal, observation, earlier, currency_law, cash_in_currency
    )
    limits = (
        _limit_breaches(constitution, proposal, observation, earlier, limits_convert)
        if with_limits
        else []
    )
    judged = _judge(constitution, proposal, action_type.reversible, found, limits)
    return Verdict(
        **_identity(constitution, proposal),
        outcome=judged.outcome,
        evaluated=evaluated,
        matched=found.matched,
        errors=found.errors,
        causes=judged.causes,
        threshold=found.threshold,
        explanation=_explanation(proposal, found, judged),
        approvals_required=judged.approvals_required,
        approver_roles=judged.approver_roles,
        expired=expired,
        citations=judged.citations,
        limits=judged.limits,
    )


def _identity(constitution: Constitution, proposal: Proposal) -> dict[str, Any]:
    """What every verdict names: the proposal, the version and hash it was judged by."""
    return {
        "proposal_id": proposal.proposal_id,
        "constitution_version": constitution.version,
        "constitution_hash": constitution.content_hash,
        "confidence": proposal.confidence,
    }


def _denied_before_rules(
    constitution: Constitution, proposal: Proposal, cause: EscalationCause, explanation: str
) -> Verdict:
    """A proposal no rule may judge (an undeclared action, money the books cannot hold)."""
    return Verdict(
        **_identity(constitution, proposal),
        outcome="deny",
        evaluated=[],
        matched=[],
        causes=[cause],
        citations=check_citations(constitution, proposal, []),
        explanation=explanation,
    )


def _live_rules(
    rules: Sequence[Rule], action: str, at: datetime
) -> tuple[list[str], list[str], list[Rule]]:
    """The rules of this action type, as (evaluated ids, expired ids, live rules)."""
    evaluated: list[str] = []
    expired: list[str] = []
    live: list[Rule] = []
    for rule in rules:
        if action not in rule.applies_to and "*" not in rule.applies_to:
            continue
        if rule.expires_at is not None and rule.expires_at <= at:
            expired.append(rule.id)
            continue
        evaluated.append(rule.id)
        live.append(rule)
    return evaluated, expired, live


def _findings(
    constitution: Constitution,
    live: list[Rule],
    proposal: Proposal,
    observation: Observation,
    earlier: Sequence[Proposal],
    currency_law: bool,
    cash_in_currency: bool,
) -> _Findings:
    document = constitution.document
    base = document.defaults.base_currency if currency_law else None
    matched, errors = _run_rules(live, proposal, observation, earlier, base, cash_in_currency)
    escalations = [m for m in matched if m.effect == "escalate"]
    allows = [m for m in matched if m.effect == "allow"]
    # An allow rule that failed to evaluate simply does not allow; a deny or escalate rule
    # that failed might have matched, so it escalates.
    effects = {rule.id: rule.effect for rule in document.rules} if errors else {}
    default = document.defaults.min_confidence
    return _Findings(
        matched=matched,
        errors=errors,
        deny_rules=[m.rule_id for m in matched if m.effect == "deny"],
        escalations=escalations,
        escalate_rules=[m.rule_id for m in escalations],
        allows=allows,
        blocking_errors=[e for e in errors if effects[e.rule_id] != "allow"],
        threshold=min((m.min_confidence or default for m in allows), default=default),
    )


_compared: dict[str, list[str]] = {}


def _bare_comparisons(source: str) -> list[str]:
    found = _compared.get(source)
    if found is None:
        found = _compared[source] = bare_amounts.comparisons(source)
    return found


def _foreign(compared: list[str], base: str, currency: str) -> str:
    return (
        f"compares money with a bare number ({compared[0]}), which is in {base}, the base "
        f"currency; the proposal is in {currency}"
    )


def _run_rules(
    live: list[Rule],
    proposal: Proposal,
    observation: Observation,
    earlier: Sequence[Proposal],
    base_currency: str | None,
    cash_in_currency: bool = True,
) -> tuple[list[RuleMatch], list[RuleError]]:
    """Each live rule's condition on the facts: the rules that matched, and those that could
    not be evaluated. With a `base_currency`, a rule comparing money with a bare number
    cannot judge a proposal in another currency (`bare_amounts`): it counts as a rule that
    could not be evaluated, so it allows nothing and escalates what it might deny."""
    reads = _reads_of(live)
    # Only the facts the live rules read: nothing else of them reaches the verdict.
    facts = facts_for(
        proposal, observation, earlier, only=reads, cash_in_every_currency=not cash_in_currency
    )
    context = _context(facts, reads)
    matched: list[RuleMatch] = []
    errors: list[RuleError] = []
    foreign = base_currency is not None and proposal.currency != base_currency
    for rule in live:
        if foreign and base_currency and (compared := _bare_comparisons(rule.when)):
            problem = _foreign(compared, base_currency, proposal.currency)
            errors.append(RuleError(rule_id=rule.id, error=problem))
            continue
        try:
            result = _program(rule.when).execute(context)
        except Exception as exc:  # any evaluation failure of untrusted facts fails closed
            errors.append(RuleError(rule_id=rule.id, error=f"{type(exc).__name__}: {exc}"))
            continue
        if result is not True and result is not False:
            errors.append(RuleError(rule_id=rule.id, error="condition is not a boolean"))
        elif result:
            matched.append(_match(rule, facts))
    return matched, errors


def _match(rule: Rule, facts: dict[str, Any]) -> RuleMatch:
    return RuleMatch(
        rule_id=rule.id,
        title=rule.title,
        effect=rule.effect,
        condition=rule.when,
        min_confidence=rule.min_confidence,
        approvals_required=rule.approvals_required,
        approvers=rule.approvers,
        why=_why(rule, facts),
    )


def _judge(
    constitution: Constitution,
    proposal: Proposal,
    reversible: bool,
    found: _Findings,
    limits: list[LimitBreach],
) -> _Judgement:
    """Precedence: a limit that denies, then deny rules, then whatever escalates."""
    if not found.deny_rules and any(
        b.on_exceed == "deny" and b.scope != "autonomous" for b in limits
    ):
        return _Judgement(
            "deny", ["limit_exceeded"], check_citations(constitution, proposal, []), limits
        )
    if found.deny_rules:
        # Deny is final for this proposal: no human approval lifts it, only a new version.
        return _Judgement(
            "deny", [], check_citations(constitution, proposal, found.deny_rules), limits
        )
    causes = _escalation_causes(proposal, reversible, found)
    decisive = found.escalate_rules or [m.rule_id for m in found.allows]
    citations = check_citations(constitution, proposal, decisive, any_of=not found.escalate_rules)
    if citations.mismatch:
        causes.append("citation_mismatch")
    return _with_limits(constitution.document, found, causes, citations, limits)


def _with_limits(
    document: ConstitutionDocument,
    found: _Findings,
    causes: list[EscalationCause],
    citations: CitationCheck,
    limits: list[LimitBreach],
) -> _Judgement:
    """No deny rule matched: a deny limit still denies; else execute, or escalate with every
    cause and the quorum the matched rules ask for."""
    # An autonomous limit binds only what would execute without a human.
    if causes:
        limits = [b for b in limits if b.scope != "autonomous"]
    if any(b.on_exceed == "deny" for b in limits):
        return _Judgement("deny", ["limit_exceeded"], citations, limits)
    if limits:
        causes.append("limit_exceeded")
    if not causes:
        return _Judgement("execute", causes, citations, limits)
    required = max(
        [m.approvals_required or 1 for m in found.escalations]
        + [document.defaults.approvals_required or 1]
    )
    roles = [sorted(m.approvers) for m in found.escalations if m.approvers]
    return _Judgement("escalate", causes, citations, limits, required, roles)


def _escalation_causes(
    proposal: Proposal, reversible: bool, found: _Findings
) -> list[EscalationCause]:
    causes: list[EscalationCause] = []
    if found.blocking_errors:
        causes.append("rule_error")
    if found.escalate_rules:
        causes.append("escalation_rule")
    if not found.allows:
        causes.append("outside_bounds")
    elif proposal.confidence < found.threshold:
        causes.append("below_confidence")
    if not reversible:
        causes.append("irreversible")
    return causes


def _explanation(proposal: Proposal, found: _Findings, judged: _Judgement) -> str:
    return _explain(
        judged.outcome,
        judged.causes,
        deny_rules=found.deny_rules,
        escalate_rules=found.escalate_rules,
        allow_rules=[m.rule_id for m in found.allows],
        confidence=proposal.confidence,
        threshold=found.threshold,
        citation_note=_citation_note(judged.citations),
        approvals_required=judged.approvals_required,
        limits=judged.limits,
    )


def _refuse_money(
    proposal: Proposal, observation: Observation
) -> tuple[EscalationCause, str] | None:
    """Amounts the books could not hold, and amounts in another currency than their record."""
    if proposal.amount is not None and not money.is_exact(proposal.amount, proposal.currency):
        return "inexact_amount", (
            f"{proposal.amount} is not an exact amount of {proposal.currency} "
            f"({money.minor_units(proposal.currency)} decimals at most)"
        )
    currencies = [
        *(i.currency for i in observation.invoices if i.invoice_id == proposal.reference),
        *(c.currency for c in observation.campaigns if c.campaign_id == proposal.reference),
        *(p.currency for p in observation.payroll_runs if p.payroll_run_id == proposal.reference),
    ]
    for currency in currencies:
        if currency != proposal.currency:
            return "currency_mismatch", (
                f"the proposal is in {proposal.currency}, its record {proposal.reference} in "
                f"{currency}"
            )
    return None


def _limit_breaches(
    constitution: Constitution,
    proposal: Proposal,
    observation: Observation,
    earlier: Sequence[Proposal],
    convert: bool,
) -> list[LimitBreach]:
    """Limits the proposal does not fit under with the spend and the rates seen at
    observation time (the act activity checks again, atomically, with the spend at
    execution)."""
    if not constitution.document.limits or not spend.applicable(constitution.document, proposal):
        return []
    invoices = {i.invoice_id: i for i in observation.invoices}

    def payee(p: Proposal) -> str:
        return spend.payee_of(p, invoices.get(p.reference or ""))

    return spend.breaches(
        constitution.document,
        proposal,
        agent=observation.agent,
        payee=payee(proposal),
        snapshot=observation.spend,
        autonomous=True,
        earlier=[(p, payee(p)) for p in earlier],
        rates=Rates(observation.rates, observation.observed_at) if convert else None,
    )
