"""The gate: a pure, deterministic judgement of a proposal against the pinned constitution.

Runs inside the workflow, so it must not do I/O, read clocks or use randomness. The
reasoner's citations are advisory; this evaluation is the authority.

Precedence (DESIGN.md): deny > escalate > allow. No allow rule means outside bounds and
escalation; confidence below the applicable threshold escalates; an irreversible action
always escalates, whatever the rules say. A rule that cannot be evaluated fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cel

from charter.facts import facts_for
from schemas import (
    Constitution,
    EscalationCause,
    Observation,
    Outcome,
    Proposal,
    RuleError,
    RuleMatch,
    Verdict,
)

_programs: dict[str, Any] = {}


def _program(source: str) -> Any:
    # Compiling is pure; caching by source keeps the gate fast for long constitutions.
    program = _programs.get(source)
    if program is None:
        program = _programs[source] = cel.compile(source)
    return program


def _explain(outcome: Outcome, causes: list[EscalationCause], **ctx: Any) -> str:
    if outcome == "deny":
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
    }
    return "Escalated: " + "; ".join(words[c] for c in causes) + "."


def evaluate(
    constitution: Constitution,
    proposal: Proposal,
    observation: Observation,
    earlier: Sequence[Proposal] = (),
) -> Verdict:
    """`earlier`: proposals of the same run gated before this one and not denied, so rules
    can see what the run already commits (`run.*` facts)."""
    document = constitution.document
    action_type = document.action_types.get(proposal.action)
    base = {
        "proposal_id": proposal.proposal_id,
        "constitution_version": constitution.version,
        "constitution_hash": constitution.content_hash,
        "confidence": proposal.confidence,
    }
    if action_type is None:
        return Verdict(
            **base,
            outcome="deny",
            evaluated=[],
            matched=[],
            causes=["unknown_action"],
            explanation=f"Denied: action type {proposal.action!r} is not declared by "
            f"constitution v{constitution.version}.",
        )

    facts = facts_for(proposal, observation, earlier)
    evaluated: list[str] = []
    matched: list[RuleMatch] = []
    errors: list[RuleError] = []
    for rule in document.rules:
        if proposal.action not in rule.applies_to and "*" not in rule.applies_to:
            continue
        evaluated.append(rule.id)
        try:
            result = _program(rule.when).execute(facts)
        except Exception as exc:  # any evaluation failure of untrusted facts fails closed
            errors.append(RuleError(rule_id=rule.id, error=f"{type(exc).__name__}: {exc}"))
            continue
        if result is not True and result is not False:
            errors.append(RuleError(rule_id=rule.id, error="condition is not a boolean"))
        elif result:
            matched.append(
                RuleMatch(
                    rule_id=rule.id,
                    title=rule.title,
                    effect=rule.effect,
                    condition=rule.when,
                    min_confidence=rule.min_confidence,
                )
            )

    effects = {rule.id: rule.effect for rule in document.rules}
    deny_rules = [m.rule_id for m in matched if m.effect == "deny"]
    escalate_rules = [m.rule_id for m in matched if m.effect == "escalate"]
    allows = [m for m in matched if m.effect == "allow"]
    # An allow rule that failed to evaluate simply does not allow; a deny or escalate rule
    # that failed might have matched, so it escalates.
    blocking_errors = [e for e in errors if effects[e.rule_id] != "allow"]

    default = document.defaults.min_confidence
    threshold = min((m.min_confidence or default for m in allows), default=default)
    ctx = {
        "deny_rules": deny_rules,
        "escalate_rules": escalate_rules,
        "allow_rules": [m.rule_id for m in allows],
        "confidence": proposal.confidence,
        "threshold": threshold,
    }

    outcome: Outcome
    causes: list[EscalationCause] = []
    if deny_rules:
        outcome = "deny"
    else:
        if blocking_errors:
            causes.append("rule_error")
        if escalate_rules:
            causes.append("escalation_rule")
        if not allows:
            causes.append("outside_bounds")
        elif proposal.confidence < threshold:
            causes.append("below_confidence")
        if not action_type.reversible:
            causes.append("irreversible")
        outcome = "escalate" if causes else "execute"

    return Verdict(
        **base,
        outcome=outcome,
        evaluated=evaluated,
        matched=matched,
        errors=errors,
        causes=causes,
        threshold=threshold,
        explanation=_explain(outcome, causes, **ctx),
    )
