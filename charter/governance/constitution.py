"""Loading and validating a constitution document (YAML in, immutable model out).

Every problem is reported with the rule it belongs to, and nothing half-valid is ever
returned: a constitution either loads completely or raises `ConstitutionError`.
"""

from __future__ import annotations

import re
from typing import Any

import cel
import yaml
from pydantic import ValidationError

from charter.audit.canonical import canonical_json, sha256_hex
from charter.governance import bare_amounts, spend
from charter.governance.facts import FACT_VARIABLES
from schemas import ConstitutionDocument, Limit, Rule


class ConstitutionError(ValueError):
    """The document is not a valid constitution. `problems` lists every issue found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid constitution:\n  - " + "\n  - ".join(problems))


def content_hash(document: ConstitutionDocument) -> str:
    return sha256_hex(canonical_json(document.model_dump(mode="json", exclude_none=True)))


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """Name the rule an error belongs to, by id when the document gives one."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = None
        rules = raw.get("rules") if isinstance(raw, dict) else None
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            rule_id = rules[loc[1]].get("id")
        field = ".".join(str(p) for p in loc[2:]) or "(rule)"
        label = f"rule {rule_id!r}" if rule_id else f"rules[{loc[1]}]"
        return f"{label}: {field}"
    return ".".join(str(p) for p in loc) or "(document)"


#: Functions of the CEL core the runtime implements natively. Anything else a condition
#: calls is a typo or an extension the gate does not load, so the loader rejects it.
CEL_FUNCTIONS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "type",
        "dyn",
        "getFullYear",
        "getMonth",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)

#: Names bound by comprehension macros (`accounts.exists(a, a.balance > 0)`): they appear
#: as identifiers in the static analysis but are not facts.
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def _is_operator(name: str) -> bool:
    return name.startswith(("_", "!", "-", "@"))


_SPEND_CALL = re.compile(r"\b(" + "|".join(spend.SPEND_DIMENSIONS) + r")\s*\(")
_SPEND_FACT = re.compile(
    r"\bspend\s*\.\s*(" + "|".join(spend.SPEND_DIMENSIONS) + r')\s*\(\s*"([^"\\]*)"\s*\)'
)


def _spend_problem(rule: Rule) -> str | None:
    """`spend.<dimension>("<window>")` only, with a known window: checked statically, like
    every field name, so a typo fails at load and not in the middle of a judgement."""
    calls = _SPEND_CALL.findall(rule.when)
    facts = _SPEND_FACT.findall(rule.when)
    if len(calls) != len(facts):
        return (
            f'rule {rule.id!r}: spend facts are written spend.<dimension>("<window>") with a '
            f"literal window; dimensions: {', '.join(spend.SPEND_DIMENSIONS)}"
        )
    unknown = sorted({w for _, w in facts if w not in spend.SPEND_WINDOWS})
    if unknown:
        return (
            f"rule {rule.id!r}: unknown spend window(s) {', '.join(unknown)}; known windows: "
            f"{', '.join(spend.SPEND_WINDOWS)}"
        )
    return None


def check_condition(rule: Rule) -> str | None:
    """Compile a rule's CEL condition; reject unknown names, unknown functions, non-booleans.

    Names are checked statically (every branch, not only the ones a probe would reach),
    then the condition is run once on probe facts to catch a non-boolean result.
    """
    try:
        program = cel.compile(rule.when)
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        return f"rule {rule.id!r}: condition does not compile: {first}"
    bound = set(_MACRO_BINDING.findall(rule.when))
    unknown = sorted(set(program.variables()) - set(FACT_VARIABLES) - bound)
    if unknown:
        known = ", ".join(sorted(FACT_VARIABLES))
        return (
            f"rule {rule.id!r}: condition references unknown field(s) {', '.join(unknown)}; "
            f"known fields are: {known}"
        )
    functions = sorted(
        f
        for f in program.functions()
        if not _is_operator(f) and f not in CEL_FUNCTIONS and f not in spend.CEL_FUNCTIONS
    )
    if functions:
        return f"rule {rule.id!r}: condition calls unknown function(s) {', '.join(functions)}"
    problem = _spend_problem(rule)
    if problem:
        return problem
    try:
        result = program.execute(
            cel.Context(variables=dict(FACT_VARIABLES), functions=spend.CEL_FUNCTIONS)
        )
    except (RuntimeError, KeyError, TypeError, ValueError):
        return None  # a runtime error on probe values (e.g. a missing map key) is fine
    if not isinstance(result, bool):
        return f"rule {rule.id!r}: condition must be a boolean, got {type(result).__name__}"
    return None


def _message(error: Any) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return str(error["msg"])


def _rule_problems(document: ConstitutionDocument, rule: Rule) -> list[str]:
    problems: list[str] = []
    for action in rule.applies_to:
        if action != "*" and action not in document.action_types:
            problems.append(f"rule {rule.id!r}: applies_to names unknown action type {action!r}")
    if rule.min_confidence is not None and rule.effect != "allow":
        problems.append(f"rule {rule.id!r}: min_confidence only applies to allow rules")
    # A quorum or an approver list only means something where a human decides: on an
    # escalation. On allow it would be silently ignored, and a deny cannot be approved.
    if rule.approvals_required is not None and rule.effect != "escalate":
        problems.append(f"rule {rule.id!r}: approvals_required only applies to escalate rules")
    if rule.approvers is not None:
        if rule.effect != "escalate":
            problems.append(f"rule {rule.id!r}: approvers only applies to escalate rules")
        bad = [r for r in rule.approvers if not _ROLE.match(r)]
        if bad:
            problems.append(f"rule {rule.id!r}: approvers has invalid role name(s) {bad}")
    if rule.expires_at is not None and rule.expires_at.tzinfo is None:
        problems.append(f"rule {rule.id!r}: expires_at needs a timezone (e.g. ...Z)")
    problem = check_condition(rule)
    if problem:
        problems.append(problem)
    problems.extend(_currency_problems(document, rule))
    return problems


def _currency_problems(document: ConstitutionDocument, rule: Rule) -> list[str]:
    """A bare number compared with money is in the base currency; a rule that also requires
    another currency can never judge what it names (docs/architecture.md, money)."""
    compared = bare_amounts.comparisons(rule.when)
    base = document.defaults.base_currency
    others = sorted(bare_amounts.currencies_required(rule.when) - {base})
    if not compared or not others:
        return []
    return [
        f"rule {rule.id!r}: compares money with a bare number ({compared[0]}), which is in "
        f"{base}, the base currency, but requires currency {others[0]}: write the rule in "
        f"{base} or set defaults.currency"
    ]


_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def parse_document(raw: Any) -> ConstitutionDocument:
    try:
        document = ConstitutionDocument.model_validate(raw)
    except ValidationError as exc:
        raise ConstitutionError(
            [f"{_where(raw, tuple(e['loc']))}: {_message(e)}" for e in exc.errors()]
        ) from None
    problems: list[str] = []
    for name in document.action_types:
        if not _ACTION.match(name):
            problems.append(
                f"action type {name!r}: names are lower case letters, digits and underscores"
            )
    seen: set[str] = set()
    for rule in document.rules:
        if rule.id in seen:
            problems.append(f"rule {rule.id!r}: duplicate id")
        seen.add(rule.id)
        problems.extend(_rule_problems(document, rule))
    problems.extend(_limit_problems(document))
    problems.extend(_limit_currency_problems(document))
    if problems:
        raise ConstitutionError(problems)
    return document


def _limit_currency_problems(document: ConstitutionDocument) -> list[str]:
    """A limit counts amounts in its own currency only; one in another currency than the
    base would hold every proposal in the base currency for a human."""
    base = document.defaults.base_currency
    return [
        f"limit {limit.id!r}: is in {limit.currency}, the base currency is {base}: a limit "
        f"counts only amounts in the base currency (set defaults.currency)"
        for limit in document.limits or []
        if limit.currency != base
    ]


def _limit_problems(document: ConstitutionDocument) -> list[str]:
    problems: list[str] = []
    spending = spend.spending_actions(document)
    seen: set[str] = set()
    for limit in document.limits or []:
        where = f"limit {limit.id!r}"
        if limit.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(limit.id)
        for action in limit.applies_to:
            if action != "*" and action not in spending:
                problems.append(
                    f"{where}: applies_to names {action!r}, which is not an action type "
                    "declared with spends: true"
                )
        if not spending:
            problems.append(f"{where}: no action type is declared with spends: true")
        problems.extend(_limit_escalation_problem(limit))
    return problems


def _limit_escalation_problem(limit: Limit) -> list[str]:
    # Past an autonomous limit a human decides, and a human's action is not autonomous. Past
    # any other limit an escalation means a human may carry spend beyond it: say so.
    if (
        limit.scope != "autonomous"
        and limit.on_exceed == "escalate"
        and not limit.approvals_may_exceed
    ):
        return [
            f"limit {limit.id!r}: on_exceed: escalate on a {limit.scope} limit needs "
            "approvals_may_exceed: true (only a human can go past it), or use on_exceed: deny"
        ]
    return []


def load_yaml(text: str) -> ConstitutionDocument:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConstitutionError([f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConstitutionError(["the document must be a mapping with action_types and rules"])
    return parse_document(raw)
