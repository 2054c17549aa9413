"""The demo government-programme site: a threaded stdlib HTTP/1.1 server on loopback.

Usage::

    with DemoSite(day=0) as site:
        urllib.request.urlopen(site.url + "/mofcom/list/index.html")
        site.day = 1                       # content changes at once
        site.set_fault("/feed.xml", "503")  # per-path fault injection

Sections, the day plan and the expected crawl results are documented in :mod:`crawlers.demo.programmes`.
Every normal 200 response carries a strong ``ETag`` (SHA-256 of the bytes) and a ``Last-Modified`` that moves
only on days its bytes changed, and answers ``If-None-Match`` / ``If-Modified-Since`` with 304.
Fixed fault paths live under ``/faults/`` (see :mod:`crawlers.demo.assets`); ``hits`` counts every request
by its request target (path plus query string, exactly as sent).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import threading
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from crawlers.demo import assets, pages, routes
from crawlers.demo import programmes as data
from crawlers.demo.pages import Response

FAULTS = ("503", "503-once", "challenge", "404", "stall")
LAST_MODIFIED_BASE = dt.datetime(2026, 3, 16, 1, 0, tzinfo=dt.UTC)
_CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class _Entry:
    response: Response
    etag: str


class DemoSite:
    """Serve the demo site in a background thread; ``port=0`` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, day: int = 0, bench_pages: int = 2000,
                 bench_page_kb: int = 0) -> None:
        self.host = host
        self.port = port
        self.day = day
        self.bench_pages = bench_pages
        self.bench_page_kb = bench_page_kb  # pad bench pages to real-world weight (varied text)
        self.stall_seconds = 60.0
        self.hits: collections.Counter[str] = collections.Counter()
        self._faults: dict[str, str] = {}
        self._once_done: set[str] = set()
        self._flaky_done = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._cache: dict[tuple[int, str, str], _Entry] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> DemoSite:
        handler = type("DemoHandler", (_Handler,), {"site": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"demo-site-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled responses
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def set_fault(self, path: str, fault: str | None) -> None:
        """Override ``path`` (no query string) with a fault from :data:`FAULTS`, or clear it with ``None``."""
        with self._lock:
            if fault is None:
                self._faults.pop(path, None)
            elif fault in FAULTS:
                self._faults[path] = fault
                self._once_done.discard(path)
            else:
                raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")

    # ---- internals used by the handler ----

    def _count(self, target: str) -> None:
        with self._lock:
            self.hits[target] += 1

    def _fault_for(self, path: str) -> str | None:
        """The fault to apply now: ``503-once`` turns into ``503`` once, then into no fault."""
        with self._lock:
            fault = self._faults.get(path)
            if fault == "503-once":
                if path in self._once_done:
                    return None
                self._once_done.add(path)
                return "503"
            return fault

    def _flaky_first(self) -> bool:
        with self._lock:
            first, self._flaky_done = not self._flaky_done, True
            return first

    def _entry(self, day: int, path: str, query: str) -> _Entry:
        key = (data.effective_day(day), path, query)
        entry = self._cache.get(key)
        if entry is None:
            resp = routes.resolve(key[0], path, query, self.url, self.bench_pages, self.bench_page_kb)
            entry = _Entry(resp, '"' + hashlib.sha256(resp.body).hexdigest()[:32] + '"')
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = entry
        return entry

    def _last_modified(self, day: int, path: str, query: str) -> dt.datetime:
        """Midnight of the first day since which the bytes at ``path`` have not changed."""
        day = data.effective_day(day)
        etag = self._entry(day, path, query).etag
        since = day
        while since > 0 and self._entry(since - 1, path, query).etag == etag:
            since -= 1
        return LAST_MODIFIED_BASE + dt.timedelta(days=since)


class _Handler(BaseHTTPRequestHandler):
    site: DemoSite
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    disable_nagle_algorithm = True
    timeout = 30

    def version_string(self) -> str:
        return getattr(self, "_server_header", self.server_version)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        site = self.site
        site._count(self.path)
        split = urlsplit(self.path)
        path, query = split.path, split.query
        fault = site._fault_for(path)
        stall = fault == "stall" or path == "/faults/stall.html"
        try:
            if fault == "503":
                return self._send(assets.unavailable(), head)
            if fault == "challenge":
                return self._send(assets.jsl_challenge(), head)
            if fault == "404":
                return self._send(pages.not_found(), head)
            if path == "/faults/huge.bin":
                return self._send_huge(head)
            if path == "/faults/flaky.html":
                resp = assets.unavailable() if site._flaky_first() else assets.flaky_ok()
                return self._send(resp, head)
            if path == "/faults/stall.html":
                return self._send(assets.flaky_ok(), head, stall=True)
            day = site.day
            entry = site._entry(day, path, query)
            resp = entry.response
            if resp.status != 200 or not resp.cacheable:
                return self._send(resp, head, stall=stall)
            last_modified = site._last_modified(day, path, query)
            extra = (("ETag", entry.etag), ("Last-Modified", format_datetime(last_modified, usegmt=True)))
            if self._not_modified(entry.etag, last_modified):
                not_modified = Response(304, resp.content_type, b"", extra)
                return self._send(not_modified, head=True, stall=stall, length=False)
            self._send(Response(200, resp.content_type, resp.body, resp.headers + extra), head, stall=stall)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _not_modified(self, etag: str, last_modified: dt.datetime) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return "*" in tags or etag in tags
        ims = self.headers.get("If-Modified-Since")
        if ims is None:
            return False
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return last_modified <= since

    def _send(self, resp: Response, head: bool, stall: bool = False, length: bool = True) -> None:
        headers = dict(resp.headers)
        self._server_header = headers.pop("Server", self.server_version)
        self.send_response(resp.status)
        if resp.status != 304:
            self.send_header("Content-Type", resp.content_type)
        if length:
            self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers:
            if name != "Server":
                self.send_header(name, value)
        self.end_headers()
        if stall:
            self.wfile.flush()
            if self.site._stopping.wait(self.site.stall_seconds):
                self.close_connection = True
                return
        if not head and resp.body:
            self.wfile.write(resp.body)

    def _send_huge(self, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(assets.HUGE_SIZE))
        self.end_headers()
        if head:
            return
        chunk = assets.huge_chunk()
        for _ in range(assets.HUGE_SIZE // len(chunk)):
            if self.site._stopping.is_set():
                self.close_connection = True
                return
            self.wfile.write(chunk)
