"""A logging filter that redacts secrets, and only secrets: ids and paths stay readable.

Two nets: patterns for token-shaped strings (bearer tokens, JWTs, well-known key prefixes,
long high-entropy runs), and the exact values of every credential this process decrypted
(registered by the credential store), so even an oddly shaped secret is caught.
Installed on the root logger's handlers by the CLI and the worker.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[REDACTED]"

_PATTERNS = [
    re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}"),  # JWT
    re.compile(
        r"\b(?:sk|pk|rk|ak|demo)_[A-Za-z0-9_]{0,20}[A-Za-z0-9]{12,}"  # sk_live_..., demo_sk_...
        r"|\b(?:sk-ant-|xox[abposr]-|ghp_|gho_|github_pat_|hvs\.|s\.|AKIA)[A-Za-z0-9._-]{12,}"
    ),
    re.compile(
        r"(?i)\b(api[_-]?key|access[_-]?token|refresh[_-]?token|secret|password|client[_-]?secret)"
        r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]{6,}"
    ),
    # Long base64-like runs mixing upper case, lower case and digits. Not ids or paths: run ids
    # (UUIDs), workflow ids, digests and hashes are lower-case hex, and a run that continues
    # a path (after `/`, `~` or `.`) is a file name; those are kept (see `_is_path_or_id`).
    re.compile(
        r"\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])"
        r"[A-Za-z0-9+/_-]{32,}={0,2}"
    ),
]
_OPAQUE = _PATTERNS[-1]

_known: set[str] = set()
_known_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Redact this exact value from every log line from now on."""
    if len(value) >= 6:
        with _known_lock:
            _known.add(value)


def _is_path_or_id(match: re.Match[str]) -> bool:
    before = match.string[match.start() - 1] if match.start() else ""
    return before in ("/", "~", ".")


def redact(text: str) -> str:
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        if pattern is _OPAQUE:
            text = pattern.sub(lambda m: m.group(0) if _is_path_or_id(m) else REDACTED, text)
        elif pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: m.group(1) + " " + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Formats the message, redacts it, and drops the arguments (already folded in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later by the handler; pre-format and redact them now.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (default: root), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
