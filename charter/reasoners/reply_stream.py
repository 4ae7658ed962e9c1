"""A model's reply is counted while it is read, on the wire and decompressed.

The Anthropic SDK reads a whole body before anything can look at it, and httpx decompresses
a gzip chunk in one call: a 100 MB reply or a gzip bomb (a megabyte on the wire, a gigabyte
decompressed) would be held in full. `BoundedReplies` is the SDK's transport: it decodes the
content encoding itself, at most `_PIECE` bytes per step, and aborts the read with
`ReplyTooLarge` as soon as either count passes the limit, so the worker never holds more
than the limit of any reply, whatever it announces or sends.

Only gzip and deflate are asked for; a reply in another encoding is unreadable.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx2

#: The most one decompression step may produce.
_PIECE = 64 * 1024
_ACCEPTED = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class UnreadableBody(Exception):
    """The reply's body cannot be read as sent: it is unreadable, not a transient fault."""


class ReplyTooLarge(UnreadableBody):
    def __init__(self, where: str, limit: int) -> None:
        super().__init__(f"the reply is over {limit:,} bytes {where}; the read was stopped there")


class _Decoder:
    """One content encoding, decoded in bounded pieces."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding not in ("", "identity") and encoding not in _WBITS:
            raise UnreadableBody(
                f"the reply's content-encoding {encoding[:40]!r} was not asked for"
            )
        wbits = _WBITS.get(encoding)
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None

    def pieces(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            yield data
            return
        try:
            while data and not self._zlib.eof:
                yield self._zlib.decompress(data, _PIECE)
                data = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise UnreadableBody(f"the reply's {self.encoding} body is corrupt: {exc}") from None


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, decoder: _Decoder, limit: int) -> None:
        self._inner = inner
        self._decoder = decoder
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        wire = decoded = 0
        async for chunk in self._inner:
            wire += len(chunk)
            if wire > self._limit:
                raise ReplyTooLarge("on the wire", self._limit)
            for piece in self._decoder.pieces(chunk):
                decoded += len(piece)
                if decoded > self._limit:
                    raise ReplyTooLarge("decompressed", self._limit)
                yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


def _announced(response: httpx2.Response) -> int | None:
    try:
        return int(response.headers.get("content-length", ""))
    except ValueError:
        return None


class BoundedReplies(httpx2.AsyncBaseTransport):
    """A transport whose responses are decoded here and never exceed `limit` bytes."""

    def __init__(self, limit: int, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._limit = limit
        self._inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["accept-encoding"] = _ACCEPTED
        response = await self._inner.handle_async_request(request)
        try:
            decoder = _Decoder(response.headers.get("content-encoding", "").strip().lower())
            if (_announced(response) or 0) > self._limit:
                raise ReplyTooLarge("announced", self._limit)
        except UnreadableBody:
            await response.aclose()
            raise
        dropped = (b"content-encoding", b"content-length")
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in dropped]
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=headers,
            stream=_BoundedStream(response.stream, decoder, self._limit),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
