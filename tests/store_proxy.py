"""A TCP proxy in front of a loopback S3 server: adds network latency, counts requests, plays an outage.

A store on 127.0.0.1 answers in well under a millisecond, so code that makes one request per page looks free
there. Between listwatch and a real S3 store each request costs a round trip (tens of ms across a region). The
proxy delays every chunk it relays by ``delay`` seconds in each direction (a round trip of ``2 * delay``; a new
connection pays one more round trip for its handshake), keeping order and overlap: chunks are in flight
together, as on a real link, not sent one after another.

It reads the requests passing through (HTTP/1.1 heads and ``Content-Length`` bodies, what boto3 sends) to
count them by kind, ``GET range`` (a ranged read), ``GET``, ``HEAD``, ``PUT``, ``POST``, ``LIST``, ``DELETE``,
and it can play the store being down: ``mode = "503"`` answers every request ``503 Service Unavailable``
without forwarding it; ``mode = "refuse"`` closes each connection before reading anything.

    with StoreProxy(server.port, delay=0.02) as proxy:
        storage = S3Storage(bucket, endpoint_url=proxy.endpoint, ...)
        ...
        proxy.counts()   # {"GET range": 12, "PUT": 4, ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from typing import Literal, Self

Mode = Literal["forward", "503", "refuse"]
_ERROR = b'<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code><Message>store down</Message></Error>'
UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nConnection: close\r\n"
               + f"Content-Length: {len(_ERROR)}\r\n\r\n".encode() + _ERROR)
CHUNK = 1 << 16


class _RequestReader:
    """Follows the client's byte stream and names each request as its head passes (bodies are skipped)."""

    def __init__(self) -> None:
        self.buffer, self.body_left = b"", 0

    def feed(self, data: bytes) -> list[str]:
        kinds: list[str] = []
        self.buffer += data
        while True:
            if self.body_left:
                taken = min(self.body_left, len(self.buffer))
                self.buffer, self.body_left = self.buffer[taken:], self.body_left - taken
                if self.body_left:
                    return kinds
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return kinds
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            kinds.append(_kind(head))
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    self.body_left = int(value.strip())


def _kind(head: str) -> str:
    lines = head.split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    if method == "GET" and any(line.lower().startswith("range:") for line in lines[1:]):
        return "GET range"
    if method == "GET" and (path.count("/") <= 1 or "list-type" in query):  # a bucket, not an object
        return "LIST"
    return method


class StoreProxy:
    """Relays 127.0.0.1:``port`` (its own port: ``self.port``) with ``delay`` seconds each way."""

    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port, self.delay = upstream_port, delay
        self.mode: Mode = "forward"
        self.port = 0
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="store-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counts(self) -> dict[str, int]:
        """Requests seen so far, by kind (``connections`` too)."""
        with self._lock:
            return dict(self._counts)

    def _count(self, kinds: list[str]) -> None:
        with self._lock:
            self._counts.update(kinds)

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count(["connections"])
        try:
            if self.mode == "refuse":
                return
            await asyncio.sleep(2 * self.delay)  # the TCP handshake's round trip
            if self.mode == "503":
                await self._unavailable(reader, writer)
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            try:
                await asyncio.gather(self._relay(reader, up_writer, _RequestReader()),
                                     self._relay(up_reader, writer, None))
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    async def _unavailable(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests = _RequestReader()
        while not (kinds := requests.feed(await reader.read(CHUNK))):
            if reader.at_eof():
                return
        self._count(kinds)
        await asyncio.sleep(self.delay)
        writer.write(UNAVAILABLE)
        await writer.drain()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     requests: _RequestReader | None) -> None:
        """Copy one direction, each chunk ``delay`` after it was read; chunks overlap in flight."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def pump() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                await asyncio.sleep(due - time.monotonic())
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(pump())
        try:
            while data := await reader.read(CHUNK):
                if requests is not None:
                    self._count(requests.feed(data))
                queue.put_nowait((time.monotonic() + self.delay, data))
            queue.put_nowait((0.0, b""))
            await sender
        finally:
            sender.cancel()
