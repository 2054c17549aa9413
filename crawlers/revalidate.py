"""Unchanged detail pages confirmed with one conditional GET each, outside Scrapy's per-request machinery.

An unchanged full re-crawl is thousands of ``304 Not Modified`` answers. Through Scrapy each one cost as much as a
page (scheduler, downloader-middleware chain, Twisted's HTTP client and parser, signals: ~70 % of the re-crawl's
CPU), so a re-crawl cost two thirds of a first crawl. Here a detail page whose earlier capture carried validators
and whose earlier extraction (same rules, no problems) is archived is asked about on a keep-alive aiohttp session
(its C parser; aiohttp is Scrapy's own dependency), and a 304 is written as the same ``server-not-modified`` revisit
+ request records the capture middleware writes. **Anything else goes back to Scrapy**: a 200 (the page changed: the
probe's body is not read, and Scrapy fetches and archives the page), a redirect, an error, a timeout (after a failed
probe, or once most of an origin's pages turn out changed, its pages all go to Scrapy). So every page that says
something new is fetched, checked, retried and archived by the one path that always did; this one only answers
"still the same?".

What still applies, unchanged:
- **Where** (the fetch policy): only origins Scrapy has already fetched from in this crawl (so their host check
  passed), and every connection is made to an address the policy allows (:class:`PolicyResolver`, checked before
  connecting); the address answering is checked again.
- **robots.txt**: the parser Scrapy's ``RobotsTxtMiddleware`` fetched for the host decides.
- **Politeness**: each probe holds one of the crawl's places (:class:`crawlers.places.Places`: Scrapy's downloader
  counts it), so Scrapy's requests and these together never exceed ``politeness.concurrency``; with a
  ``politeness.delay`` (Scrapy spaces requests) nothing is probed here.
- **Headers**: those of Scrapy's last request to the origin (user agent, Accept*, the source's headers), with
  this page's cookies from Scrapy's cookie jar, the Referer the listing page gives and the validators.
- **The page limit**: each probe counts as a page for ``limits.max_pages`` (Scrapy's CloseSpider counter).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.request import getproxies

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.closespider import CloseSpider

from archive.dedup import Earlier
from crawlers.capture import WarcCapture
from crawlers.fetch_policy import FetchPolicy, ip_literal, origin_prefix
from crawlers.places import Places

logger = logging.getLogger(__name__)

CHURN = 8   # changed pages of an origin after which, if they outnumber its unchanged ones, probing stops there

# Request headers not taken from Scrapy's last request to the origin: set per page, or by the HTTP client.
_PER_PAGE = {"host", "cookie", "referer", "if-none-match", "if-modified-since", "content-length"}


@dataclass(frozen=True)
class Unchanged:
    """A detail page the server said is not modified, archived as a revisit."""

    record: str                 # the revisit record's id
    same_as: str | None         # the extraction to point at (None: the one archived with ``original``)
    data: dict[str, Any]        # that extraction


class PolicyResolver(AbstractResolver):
    """Name resolution that drops addresses the fetch policy refuses: a probe never connects to one."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        url = f"http://{host}:{port}/"
        allowed = [r for r in found if (ip := ip_literal(r["host"])) is not None
                   and self.policy.refuse_address(url, ip) is None]
        if not allowed:
            raise OSError(f"{host} resolves to no address this source's fetch policy allows")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


class _Response(aiohttp.ClientResponse):
    """Keeps the peer's address, which aiohttp drops once a bodiless answer (a 304) releases its connection."""

    peer: str | None = None

    async def start(self, connection: Any) -> aiohttp.ClientResponse:
        transport = connection.transport
        peername = transport.get_extra_info("peername") if transport is not None else None
        self.peer = str(peername[0]) if peername else None
        return await super().start(connection)


class Revalidator:
    """One crawl's probes. Built by the spider for a full crawl that can use it (:meth:`for_crawl`)."""

    def __init__(self, crawler: Crawler, capture: WarcCapture, policy: FetchPolicy, places: Places) -> None:
        self.crawler = crawler
        self.places = places
        self.capture = capture
        self.policy = policy
        self.timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT", 180)
        self.per_host = crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8)
        self.obey_robots = crawler.settings.getbool("ROBOTSTXT_OBEY")
        self.user_agent = crawler.settings.get("USER_AGENT", "")
        self.session: aiohttp.ClientSession | None = None
        self._robots: dict[str, Any] = {}
        self._middlewares: dict[type, Any] = {}
        self.refused: set[str] = set()   # origins not probed any more: their pages go to Scrapy
        self.changed_at: dict[str, int] = {}     # per origin, probes answered otherwise than 304
        self.unchanged_at: dict[str, int] = {}   # per origin, probes answered 304
        self.probes = 0           # conditional GETs sent here
        self.unchanged = 0        # of them, answered 304 and archived here

    @classmethod
    def for_crawl(cls, crawler: Crawler, capture: WarcCapture | None, policy: FetchPolicy, places: Places,
                  kind: str) -> Revalidator | None:
        """A revalidator when this crawl can use one: a full crawl with capture, dedup and conditional GETs on,
        and no politeness delay (with one, requests are spaced by Scrapy and cost no CPU worth saving)."""
        settings = crawler.settings
        if kind != "full" or capture is None or capture.dedup is None or settings.getfloat("DOWNLOAD_DELAY") \
                or not settings.getbool("LISTWATCH_CONDITIONAL_GET", True) \
                or not settings.getbool("LISTWATCH_REVALIDATE", True) or settings.getbool("AUTOTHROTTLE_ENABLED") \
                or getproxies():   # requests must leave through the proxy Scrapy uses: leave them to Scrapy
            return None
        return cls(crawler, capture, policy, places)

    async def check(self, request: Request, rules: str) -> Unchanged | None:
        """The page's 304, archived, with its earlier extraction; None when Scrapy should fetch it instead."""
        prefix = origin_prefix(request.url)
        if prefix in self.refused or request.meta.get("proxy"):
            return None
        earlier = self._earlier(request, rules)
        if earlier is None:
            return None
        sent = self.capture.sent.get(prefix)
        if sent is None or not await self._allowed_by_robots(request):
            return None
        template = [(k, v) for k, v in sent if k.lower() not in _PER_PAGE]
        original, reused = earlier
        headers = [*template, *self._per_page(request, original)]
        try:
            async with self.places.taken():
                answer = await self._probe(request.url, headers)
        except IgnoreRequest:   # the crawl is closing: Scrapy's path reports the page as not fetched
            return None
        if answer is None:
            self.refused.add(prefix)   # (a certificate Scrapy accepts and aiohttp does not…): no more probes there
            return None
        status, peer = answer
        if status != 304:
            self._changed(prefix)
            return None
        self._count_page()
        netloc = yarl.URL(request.url, encoded=True).raw_authority
        record = self.capture.not_modified(url=request.url, method="GET", request_headers=[("Host", netloc), *headers],
                                           status=304, earlier=original, ip_address=peer)
        self.capture.settled(request.url)
        self.unchanged += 1
        self.unchanged_at[prefix] = self.unchanged_at.get(prefix, 0) + 1
        same_as, data = reused
        return Unchanged(record, same_as, data)

    def _changed(self, prefix: str) -> None:
        """A changed page costs two requests (the probe, then Scrapy's). Where most pages answer so (an ETag new
        on every request for the same bytes, a site rewritten), probing costs more than it saves: after
        ``CHURN`` of them, outnumbering the unchanged ones, the origin's pages go straight to Scrapy."""
        changed = self.changed_at[prefix] = self.changed_at.get(prefix, 0) + 1
        if changed >= CHURN and changed > self.unchanged_at.get(prefix, 0):
            self.refused.add(prefix)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    # -- steps ---------------------------------------------------------------------------------

    def _earlier(self, request: Request,
                 rules: str) -> tuple[Earlier, tuple[str | None, dict[str, Any]]] | None:
        """The capture to revalidate and the extraction a 304 would reuse (both needed, else Scrapy's path)."""
        assert self.capture.dedup is not None
        original = self.capture.dedup.validators(request.url, self.capture.source_id)
        if original is None:
            return None
        reused = self.capture.reusable_extraction(request.url, "detail", rules, original, again=True)
        return (original, reused) if reused is not None else None

    def _per_page(self, request: Request, original: Earlier) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        referer = request.headers.get("Referer")
        if referer:
            headers.append(("Referer", referer.decode("latin-1")))
        cookies = self._middleware(CookiesMiddleware)
        jar = cookies.jars.get(request.meta.get("cookiejar")) if cookies is not None else None
        if jar is not None and len(jar):
            probe = request.replace()
            jar.add_cookie_header(probe)
            headers += [("Cookie", v.decode("latin-1")) for v in probe.headers.getlist("Cookie")]
        if original.etag:
            headers.append(("If-None-Match", original.etag))
        if original.last_modified:
            headers.append(("If-Modified-Since", original.last_modified))
        return headers

    async def _allowed_by_robots(self, request: Request) -> bool:
        """What Scrapy's RobotsTxtMiddleware decides (its parser, fetched once per host; none: allowed)."""
        robots = self._middleware(RobotsTxtMiddleware) if self.obey_robots else None
        if robots is None:
            return True
        prefix = origin_prefix(request.url)
        if prefix not in self._robots:
            self._robots[prefix] = await robots.robot_parser(request)
        parser = self._robots[prefix]
        return parser is None or bool(parser.allowed(request.url, request.headers.get("User-Agent")
                                                     or self.user_agent))

    async def _probe(self, url: str, headers: list[tuple[str, str]]) -> tuple[int, str | None] | None:
        """Send the conditional GET; (status, answering address), never reading a body. None on any failure."""
        self.probes += 1
        try:
            async with self._session().get(yarl.URL(url, encoded=True), headers=headers,
                                           allow_redirects=False) as response:
                peer = response.peer if isinstance(response, _Response) else None
                status = response.status
                if status != 304:
                    response.close()   # the page changed: Scrapy fetches it; this body is never read
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            logger.debug("probe of %s failed (%s): Scrapy fetches it", url, exc)
            return None
        ip = ip_literal(peer) if peer else None
        if ip is not None and self.policy.refuse_address(url, ip) is not None:
            return None   # Scrapy's path refuses it again, and says so in the crawl report
        return status, peer

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.per_host,
                                             resolver=PolicyResolver(self.policy))
            self.session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                response_class=_Response, timeout=aiohttp.ClientTimeout(total=self.timeout),
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"))
        return self.session

    def _count_page(self) -> None:
        self.crawler.stats.inc_value("listwatch/revalidated")
        closespider = self._extension(CloseSpider)
        if closespider is not None and closespider.close_on.get("pagecount"):
            closespider.page_count(None, None, self.crawler.spider)

    def _middleware(self, kind: type) -> Any:
        if kind not in self._middlewares:
            engine = self.crawler.engine
            chain = getattr(getattr(getattr(engine, "downloader", None), "middleware", None), "middlewares", ())
            self._middlewares[kind] = next((m for m in chain if isinstance(m, kind)), None)
        return self._middlewares[kind]

    def _extension(self, kind: type) -> Any:
        try:
            return self.crawler.get_extension(kind)
        except RuntimeError:
            return None
