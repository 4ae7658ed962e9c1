"""Every HTTP request this test process sends, and whether the task sending it held a
database transaction at that moment.

Installed once per session (tests/conftest.py) on the send methods of every HTTP client the
providers' SDKs use: httpx (Modern Treasury, Anthropic), requests (QuickBooks, intuit-oauth),
urllib3 (Plaid) and aiohttp. `Database.tenant` marks the task that holds a transaction
(`charter.storage.db.in_transaction`), and the mark follows a call into a worker thread, so a
request sent while its caller is inside a transaction is caught whichever SDK sends it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import requests
import urllib3.connectionpool

from charter.storage.db import in_transaction


@dataclass
class Calls:
    sent: list[str] = field(default_factory=list)
    """What was sent (`library METHOD host`), in order."""
    inside: list[str] = field(default_factory=list)
    """The ones sent from inside a database transaction."""

    def note(self, what: str) -> None:
        self.sent.append(what)
        if in_transaction():
            self.inside.append(what)

    def clear(self) -> None:
        self.sent.clear()
        self.inside.clear()


CALLS = Calls()


def _sync(library: str, describe: Callable[..., str], send: Any) -> Any:
    @functools.wraps(send)
    def sending(*args: Any, **kwargs: Any) -> Any:
        CALLS.note(f"{library} {describe(*args, **kwargs)}")
        return send(*args, **kwargs)

    return sending


def _async(library: str, describe: Callable[..., str], send: Any) -> Any:
    @functools.wraps(send)
    async def sending(*args: Any, **kwargs: Any) -> Any:
        CALLS.note(f"{library} {describe(*args, **kwargs)}")
        return await send(*args, **kwargs)

    return sending


def _httpx(_client: Any, request: httpx.Request, *_: Any, **__: Any) -> str:
    return f"{request.method} {request.url.host}:{request.url.port}"


def _requests(_session: Any, request: requests.PreparedRequest, *_: Any, **__: Any) -> str:
    return f"{request.method} {request.url}".split("?")[0]


def _urllib3(pool: Any, method: str, url: str, *_: Any, **__: Any) -> str:
    return f"{method} {pool.host}:{pool.port}"


def _aiohttp(_session: Any, method: str, url: Any, *_: Any, **__: Any) -> str:
    return f"{method} {url}".split("?")[0]


_PATCHES: list[tuple[Any, str, Callable[..., str], bool, str]] = [
    (httpx.AsyncClient, "send", _httpx, True, "httpx"),
    (httpx.Client, "send", _httpx, False, "httpx"),
    (requests.Session, "send", _requests, False, "requests"),
    (urllib3.connectionpool.HTTPConnectionPool, "urlopen", _urllib3, False, "urllib3"),
    (aiohttp.ClientSession, "_request", _aiohttp, True, "aiohttp"),
]


@contextmanager
def watching() -> Iterator[Calls]:
    """Watch every request until the block ends."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, *_ in _PATCHES]
    for owner, name, describe, is_async, library in _PATCHES:
        wrap = _async if is_async else _sync
        setattr(owner, name, wrap(library, describe, getattr(owner, name)))
    try:
        yield CALLS
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
