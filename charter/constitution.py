"""Loading and validating a constitution document (YAML in, immutable model out).

Every problem is reported with the rule it belongs to, and nothing half-valid is ever
returned: a constitution either loads completely or raises `ConstitutionError`.
"""

from __future__ import annotations

from typing import Any

import cel
import yaml
from pydantic import ValidationError

from charter.canonical import canonical_json, sha256_hex
from charter.facts import FACT_VARIABLES
from schemas import ConstitutionDocument, Rule


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


def check_condition(rule: Rule) -> str | None:
    """Compile a rule's CEL condition and probe it for unknown names and a boolean result."""
    try:
        program = cel.compile(rule.when)
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        return f"rule {rule.id!r}: condition does not compile: {first}"
    try:
        result = program.execute(dict(FACT_VARIABLES))
    except RuntimeError as exc:
        if "Undefined variable or function" in str(exc):
            known = ", ".join(sorted(FACT_VARIABLES))
            return (
                f"rule {rule.id!r}: condition references an unknown name "
                f"({str(exc).split('.')[0]}); known names are: {known}"
            )
        return None  # a runtime error on probe values (e.g. missing map key) is fine
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(result, bool):
        return f"rule {rule.id!r}: condition must be a boolean, got {type(result).__name__}"
    return None


def parse_document(raw: Any) -> ConstitutionDocument:
    try:
        document = ConstitutionDocument.model_validate(raw)
    except ValidationError as exc:
        raise ConstitutionError(
            [f"{_where(raw, tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems: list[str] = []
    seen: set[str] = set()
    for rule in document.rules:
        if rule.id in seen:
            problems.append(f"rule {rule.id!r}: duplicate id")
        seen.add(rule.id)
        for action in rule.applies_to:
            if action != "*" and action not in document.action_types:
                problems.append(
                    f"rule {rule.id!r}: applies_to names unknown action type {action!r}"
                )
        if rule.min_confidence is not None and rule.effect != "allow":
            problems.append(f"rule {rule.id!r}: min_confidence only applies to allow rules")
        problem = check_condition(rule)
        if problem:
            problems.append(problem)
    if problems:
        raise ConstitutionError(problems)
    return document


def load_yaml(text: str) -> ConstitutionDocument:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConstitutionError([f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConstitutionError(["the document must be a mapping with action_types and rules"])
    return parse_document(raw)
