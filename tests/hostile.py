"""A hostile web server on loopback: fixed pages by path, changeable while it runs, with request logs.

Used by the hardening tests (busy pages, gzip bombs, SSRF bait, malformed links, secret headers)::

    with HostileSite() as site:
        site.page("/list.html", LIST_HTML)
        site.redirect("/go", "http://169.254.169.254/latest/meta-data/")
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Page:
    body: bytes
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Content-Type", "text/html; charset=utf-8")])


class HostileSite:
    """Serve ``pages`` from a background thread on 127.0.0.1 (a free port); 404 for anything else."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[dict[str, str]] = []   # every request's path and headers (lower-case), in order
        self.raws: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.delay = 0.0               # seconds each answer waits (so that concurrent requests overlap)
        self.most_at_once = 0          # the most requests in progress at one moment
        self._at_once = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def page(self, path: str, body: str | bytes, status: int = 200,
             headers: list[tuple[str, str]] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.pages[path] = Page(data, status, headers or [("Content-Type", "text/html; charset=utf-8")])

    def redirect(self, path: str, target: str, status: int = 302) -> None:
        self.pages[path] = Page(b"", status, [("Location", target)])

    def raw(self, path: str, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        """Answer ``path`` by hand: ``answer(handler)`` writes whatever it likes to ``handler.wfile`` (a lying
        Content-Length, a reset mid-body, an endless or dripping body); the connection closes after it."""
        self.raws[path] = answer

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with site._lock:
                    site._at_once += 1
                    site.most_at_once = max(site.most_at_once, site._at_once)
                try:
                    self.answer()
                finally:
                    with site._lock:
                        site._at_once -= 1

            def answer(self) -> None:
                site.hits[self.path] += 1
                site.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                if site.delay:
                    time.sleep(site.delay)
                if self.path in site.raws:
                    self.close_connection = True
                    # The client may give up (a timeout, a size cap): what the hostile answer wanted.
                    with contextlib.suppress(OSError):
                        site.raws[self.path](self)
                    return
                page = site.pages.get(self.path, Page(b"not here", 404, [("Content-Type", "text/plain")]))
                etag = dict(page.headers).get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:   # a page given an ETag revalidates
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(page.status)
                for name, value in page.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

            do_POST = do_GET   # a webhook endpoint: a raw answer reads the request body itself

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def listing_html(items: list[tuple[str, str]], extra: str = "") -> str:
    """A listing page: ``<ul class="list">`` with one ``<li><a href>title</a></li>`` per item."""
    rows = "".join(f'<li><a href="{href}">{title}</a></li>' for href, title in items)
    return f'<html><body><ul class="list">{rows}</ul>{extra}</body></html>'


def source_yaml(site_url: str, source_id: str = "hostile", start: str = "/list.html", extra: str = "") -> str:
    """A source for a ``listing_html`` page (robots off, no delay); ``extra`` is appended YAML."""
    return (f"id: {source_id}\nname: Hostile {source_id}\nstart_urls: ['{site_url}{start}']\n"
            "politeness: {delay: 0, obey_robots: false}\nlimits: {retries: 0, timeout: 5}\n"
            "items:\n  selector: 'ul.list > li'\n  key: url\n  fields:\n"
            "    url: {css: 'a::attr(href)', type: url}\n    title: 'a'\n" + extra)
