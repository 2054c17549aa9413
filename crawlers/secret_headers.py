"""A source's own request headers (``headers:`` in its file, often a token from ``${ENV}``): sent, never kept.

:class:`SourceHeadersMiddleware` adds them to requests for the start URLs' hosts only (a token must not
follow a link or redirect to another host). Their values are secrets: :func:`redact` replaces them with
``[redacted]`` wherever request headers are written down (WARC request records), and Scrapy never sees them
as settings (which it would print at start-up).
"""

from __future__ import annotations

from collections.abc import Iterable

from scrapy import Request, Spider
from scrapy.crawler import Crawler

from archive.records import Headers
from crawlers.fetch_policy import origin
from crawlers.sources import Source

REDACTED = "[redacted]"
# Always secret, whoever set them (a browser may send cookies; a hook may add a token).
ALWAYS_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})


def redact(headers: Headers, secret_names: Iterable[str] = ()) -> Headers:
    """``headers`` with the values of secret ones replaced by ``[redacted]`` (names and order kept)."""
    secret = ALWAYS_SECRET | {n.lower() for n in secret_names}
    return [(name, REDACTED if name.lower() in secret else value) for name, value in headers]


class SourceHeadersMiddleware:
    """Downloader middleware: the source's ``headers`` on every request to one of its start URLs' hosts."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SourceHeadersMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        source = getattr(spider or self.crawler.spider, "source", None)
        if not isinstance(source, Source) or not source.headers:
            return
        where = origin(request.url)
        if where is None or where[0] not in {o[0] for o in map(origin, source.start_urls) if o}:
            for name, value in source.headers.items():  # a redirect to another host must not carry it along
                if request.headers.get(name) == value.encode("utf-8"):
                    request.headers.pop(name, None)
            return
        for name, value in source.headers.items():
            request.headers[name] = value
