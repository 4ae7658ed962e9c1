"""Which conditions compare money with a bare number, and so speak the base currency.

A rule titled "up to $1,000" says `amount <= 1000.0`: the number carries no currency, and
the law reads it in the tenant's base currency (`defaults.currency`, USD unless set). A
proposal in another currency cannot be judged by such a comparison, so the gate treats the
rule as one it could not evaluate for that proposal: an allow rule does not allow it, a deny
or escalate rule sends it to a human (docs/architecture.md, "Money in the law").

Money, here, is what a condition sees in the proposal's own currency: `amount`, the run's
sums (`run.*amount`) and the spend sums (`spend.<dimension>(...)`). A comparison of money
with money (`amount > invoice.outstanding`) is left alone: the gate already refuses a
proposal whose record is in another currency.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>[rRbB]?"(?:\\.|[^"\\])*"|[rRbB]?'(?:\\.|[^'\\])*')
    | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
    | (?P<name>[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)
    | (?P<op><=|>=|==|!=|&&|\|\||[<>()\[\]{},?:!+\-*/%])
    )""",
    re.VERBOSE,
)
_COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}
_BOUNDARIES = {"&&", "||", "?", ":", ","}
_OPEN, _CLOSE = {"(", "[", "{"}, {")", "]", "}"}
_MONEY = re.compile(r"^(amount|run\.\w*amount\w*|spend\.\w+)$")
_CURRENCY_REQUIRED = re.compile(r"""\bcurrency\s*==\s*["']([A-Z]{3})["']""")

Token = tuple[str, str]


def _tokens(source: str) -> list[Token]:
    found: list[Token] = []
    at = 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None or match.end() == at:
            break  # not CEL this reader knows: the compiler reports it
        kind = match.lastgroup or "op"
        found.append((kind, re.sub(r"\s+", "", match.group(kind))))
        at = match.end()
    return found


def _side(tokens: list[Token], start: int, step: int) -> list[Token]:
    """The operand of a comparison, read from `start` in direction `step` up to the next
    boundary at the same nesting depth."""
    side: list[Token] = []
    depth = 0
    i = start
    while 0 <= i < len(tokens):
        kind, text = tokens[i]
        opening, closing = (_OPEN, _CLOSE) if step > 0 else (_CLOSE, _OPEN)
        if text in opening:
            depth += 1
        elif text in closing:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (text in _BOUNDARIES or text in _COMPARISONS):
            break
        side.append((kind, text))
        i += step
    return side


def _bare_number(side: list[Token]) -> bool:
    kinds = {kind for kind, _ in side}
    return "number" in kinds and kinds <= {"number", "op"}


def _money(side: list[Token]) -> bool:
    return any(kind == "name" and _MONEY.match(text) for kind, text in side)


def comparisons(source: str) -> list[str]:
    """Each comparison of money with a bare number in `source`, as written (whitespace
    dropped), in order: `amount<=1000.0`."""
    tokens = _tokens(source)
    found: list[str] = []
    for i, (kind, text) in enumerate(tokens):
        if kind != "op" or text not in _COMPARISONS:
            continue
        left, right = _side(tokens, i - 1, -1)[::-1], _side(tokens, i + 1, 1)
        if (_money(left) and _bare_number(right)) or (_bare_number(left) and _money(right)):
            found.append("".join(t for _, t in left) + text + "".join(t for _, t in right))
    return found


def currencies_required(source: str) -> set[str]:
    """The currencies a condition tests the proposal for (`currency == "EUR"`)."""
    return set(_CURRENCY_REQUIRED.findall(source))
