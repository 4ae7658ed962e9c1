"""Start-up failures an operator can fix, as one line each (entry points exit with code 2).

A missing variable, an unreachable server, a refused password or an unsafe role is the
operator's to fix, not a bug: a traceback would bury the one sentence that matters.
Anything not recognised here is a bug and keeps its traceback.
"""

from __future__ import annotations

import socket
import sys

import asyncpg
from pydantic import ValidationError

from charter.config.secret_files import SecretFileUnreadable
from charter.config.settings import ConfigurationError
from charter.storage.server_checks import UnsafeServer

#: PostgreSQL refusing the connection itself: wrong password, unknown role or database.
_REFUSED = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def configuration_failure(exc: BaseException) -> str | None:
    """The one line to print for a configuration failure, or None for anything else."""
    if isinstance(exc, (ConfigurationError, SecretFileUnreadable)):
        return _first_line(exc)
    if isinstance(exc, UnsafeServer):
        return f"unsafe database configuration: {_first_line(exc)}"
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
        return f"invalid configuration: {problems}"
    if isinstance(exc, _REFUSED):
        return f"PostgreSQL refused the connection: {_first_line(exc)}"
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return f"cannot connect: {_first_line(exc)}"
    return None


def refuse_in_one_line(exc: BaseException, who: str) -> int:
    """An entry point's `except`: a configuration failure printed as `who: problem` on
    stderr, exit code 2; anything else re-raised with its traceback."""
    problem = configuration_failure(exc)
    if problem is None:
        raise exc
    print(f"{who}: {problem}", file=sys.stderr)
    return 2
