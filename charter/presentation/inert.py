"""Untrusted text made inert for a terminal: what the approver sees is what they sign.

Rationales, memos, vendor and campaign names and references come from the reasoner or the
books, and a terminal obeys escape sequences: a rationale carrying `ESC[2K` or a cursor move
can overwrite the amount above it. Escape sequences are removed, every other control or
bidirectional-override character is shown as a visible code, and the result is a Rich
`Text`, never parsed as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-character ESC sequences;
# also their 8-bit forms.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d).*?(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[@-Z\\-_]"
)
# Controls except newline and tab, DEL, C1 controls, the bidirectional marks and overrides
# that reorder what is displayed (the Arabic letter mark too), and the invisible characters
# that hide in a name (zero-width spaces and joiners, word joiners, the byte-order mark).
_CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    r"\u2066-\u2069\ufeff]"
)


def inert(value: object) -> str:
    """The text with escape sequences removed and other control characters made visible."""
    text = _ESCAPES.sub("", "" if value is None else str(value))
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def plain(value: object, style: str = "") -> Text:
    """Inert text as a Rich `Text`: brackets are shown, never read as markup."""
    return Text(inert(value), style=style)
