"""A local HTTP server that speaks the Anthropic Messages API, for the real SDK to talk to.

Replies are scripted per tenant (the tenant id is read from the observation in the request),
so tests sharing one worker do not consume each other's replies. Prompt caching is
simulated from what the client actually sends: the first request with a given cached prefix
(tools and system up to the `cache_control` breakpoint) reports `cache_creation_input_tokens`,
later identical prefixes report `cache_read_input_tokens`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import threading
import time
import uuid
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TENANT = re.compile(r'"tenant_id": "([a-z0-9_-]+)"')


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a slow provider)."""
    raw: bytes | None = None
    """A body sent verbatim instead of a message built from `body` (a broken provider)."""
    drip: float = 0.0
    """Seconds between two bytes of the body: a reply that is always arriving, never done."""
    stream: Callable[[], Iterator[bytes]] | None = None
    """A body made while it is sent (one far larger than memory should hold)."""
    length: int = 0
    """The content-length announced with `stream`."""


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    tenant: str | None


def tool_reply(
    proposals: list[dict[str, Any]] | Any,
    *,
    stop_reason: str = "tool_use",
    output_tokens: int = 180,
) -> Reply:
    """A reply calling `propose_actions` with `{"proposals": proposals}` (or any raw input)."""
    tool_input = {"proposals": proposals} if isinstance(proposals, list) else proposals
    return Reply(
        200,
        {
            "content": [
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:20]}",
                    "name": "propose_actions",
                    "input": tool_input,
                }
            ],
            "stop_reason": stop_reason,
            "_output_tokens": output_tokens,
        },
    )


def raw_reply(raw: bytes | str, status: int = 200) -> Reply:
    """Exactly these bytes, whatever they are, with a JSON content type."""
    return Reply(status, {}, raw=raw.encode() if isinstance(raw, str) else raw)


def message_reply(**fields: Any) -> Reply:
    """A complete message envelope with some fields replaced (`content=None`, ...)."""
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }
    return raw_reply(json.dumps({**message, **fields}))


def dripped(reply: Reply, every: float) -> Reply:
    """`reply`, one byte every `every` seconds: each read gets a byte, so no read times out."""
    return dataclasses.replace(reply, drip=every)


def huge_reply(size: int) -> Reply:
    """`size` bytes of whitespace and then `{}`, made while sent, with its content-length
    withheld (a chunk-less stream the client must count itself)."""

    def body() -> Iterator[bytes]:
        chunk = b" " * 65536
        for _ in range((size - 2) // len(chunk)):
            yield chunk
        yield b"{}"

    return Reply(200, {}, stream=body, length=0)


@functools.cache
def _bomb(decompressed: int) -> bytes:
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(zeros) for _ in range(decompressed >> 20)]
    return b"".join([*parts, packer.flush()])


def gzip_bomb(decompressed: int = 1 << 30) -> Reply:
    """A gzip body of about a megabyte on the wire that decompresses to `decompressed` zeros."""
    return Reply(200, {}, headers={"content-encoding": "gzip"}, raw=_bomb(decompressed))


def text_reply(text: str) -> Reply:
    return Reply(200, {"content": [{"type": "text", "text": text}], "stop_reason": "end_turn"})


def error_reply(status: int, kind: str, message: str, **headers: str) -> Reply:
    return Reply(
        status, {"type": "error", "error": {"type": kind, "message": message}}, dict(headers)
    )


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


class FakeMessagesApi:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._cached: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeMessagesApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, tenant: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[tenant].extend(replies)

    def requests_for(self, tenant: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.tenant == tenant]

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            script = self._scripts.get(request.tenant or "")
            if script:
                return script.popleft()
        return tool_reply([])  # unscripted: a model with nothing to propose

    def _message(self, request: Request, reply: Reply) -> dict[str, Any]:
        body = request.body
        system = body.get("system") or []
        cut = max((i for i, b in enumerate(system) if "cache_control" in b), default=-1)
        prefix = [body.get("tools"), system[: cut + 1]] if cut >= 0 else None
        usage = {
            "input_tokens": _tokens(body.get("messages")),
            "output_tokens": reply.body.get("_output_tokens", 40),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if prefix is not None:
            key = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
            with self._lock:
                hit = key in self._cached
                self._cached.add(key)
            usage["cache_read_input_tokens" if hit else "cache_creation_input_tokens"] = _tokens(
                prefix
            )
        else:
            usage["input_tokens"] += _tokens([body.get("tools"), system])
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-test"),
            "content": reply.body["content"],
            "stop_reason": reply.body["stop_reason"],
            "stop_sequence": None,
            "usage": usage,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                text = json.dumps(body.get("messages", []))
                match = _TENANT.search(text.replace('\\"', '"'))
                request = Request(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    tenant=match.group(1) if match else None,
                )
                if self.path.rstrip("/") != "/v1/messages":
                    reply = error_reply(404, "not_found_error", f"no route {self.path}")
                else:
                    reply = api._next(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw is not None or reply.stream is not None:
                    data = reply.raw or b""
                else:
                    payload = reply.body if reply.status != 200 else api._message(request, reply)
                    data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                    for k, v in reply.headers.items():
                        self.send_header(k.replace("_", "-"), v)
                    if reply.stream is None:
                        self.send_header("content-length", str(len(data)))
                    elif reply.length:
                        self.send_header("content-length", str(reply.length))
                    self.end_headers()
                    self._body(reply, data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: that is the point of a delay

            def _body(self, reply: Reply, data: bytes) -> None:
                if reply.stream is not None:
                    for chunk in reply.stream():
                        self.wfile.write(chunk)
                    self.close_connection = True
                elif reply.drip:
                    for i in range(len(data)):
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                else:
                    self.wfile.write(data)

        return Handler
