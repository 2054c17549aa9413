"""The fetch policy: where a source's crawl may send requests (against server-side request forgery).

A listing page controls the links the crawler follows (detail pages, attachments, redirects, and in a
browser every subresource). Without a policy a hostile or compromised page makes the crawler fetch
``http://169.254.169.254/`` (cloud metadata), ``http://10.0.0.5/admin`` or another service on the crawl
host, and archive the answer as evidence. So every request must pass these checks:

1. **Host**: its host name is one of the start URLs' hosts, or one the source lists in ``fetch.hosts``
   (``*.example.gov.cn`` covers subdomains). Checked before anything is sent, on every redirect hop.
2. **Address**: the address the host resolves to (and, after the fact, the address the response actually
   came from) must be a public one. Private (10/8, 172.16/12, 192.168/16, fc00::/7…), loopback,
   link-local (169.254/16, fe80::/10, so the metadata address), multicast, reserved and unspecified
   addresses are refused unless the source explicitly allows them: a start URL whose host is an IP literal
   or ``localhost`` allows exactly its own origin (host and port: the demo site and tests on 127.0.0.1),
   and ``fetch.internal`` lists more origins (``intranet.example:8080``) or networks (``10.1.0.0/16``).

3. **Length**: a URL longer than ``MAX_URL_LENGTH`` is not fetched. Scrapy's own limit (``URLLENGTH_LIMIT``,
   2083, a spider middleware turned off in ``crawlers/settings.py``) dropped such a request silently, and a
   detail page's request carries its listing item: the programme never reached ``items.jsonl`` (a false
   removal once its URL grew). Refused here, it is a page problem like any other and the item is kept.

A refused request is a problem of kind ``refused`` in the crawl report and nothing of it is archived or
extracted. :class:`FetchPolicyMiddleware` applies the policy to Scrapy's downloads (priority 960, outside
the WARC capture at 950, so a refused response is never written); :meth:`FetchPolicy.abort_request` is
Playwright's ``PLAYWRIGHT_ABORT_REQUEST`` hook, so a rendered page's own requests obey it too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawlers.sources import Source

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REFUSED = "refused"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Far above what servers take (8 KiB request lines are common; a longer URL gets a 414, a page problem), only so
# that a runaway link cannot fill WARC headers, the catalog and logs.
MAX_URL_LENGTH = 16_384


class FetchRefused(IgnoreRequest):
    """The fetch policy refused this request (the message says why)."""


def is_internal(ip: IP) -> bool:
    """Any address that is not plainly public: private, loopback, link-local, metadata, reserved…"""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def too_long(url: str) -> str | None:
    """Why ``url`` is too long to fetch, or None."""
    if len(url) <= MAX_URL_LENGTH:
        return None
    return f"the URL is {len(url):,} characters long, over the {MAX_URL_LENGTH:,} a crawl fetches"


def origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, lower-case host and the scheme's default port; None if it cannot be."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not host or port is None:
        return None
    return host.rstrip("."), port


def ip_literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_internal(entry: str) -> tuple[str, int] | Network:
    """A ``fetch.internal`` entry: a network (``10.0.0.0/8``, ``::1``) or an origin (``host:port``)."""
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    found = origin(f"http://{text}")
    if found is None or ":" not in text.rsplit("]", 1)[-1]:
        raise ValueError(f"{entry!r} is neither a network (10.0.0.0/8) nor a host:port origin (intranet.example:8080)")
    return found


@dataclass(frozen=True)
class FetchPolicy:
    hosts: frozenset[str]
    suffixes: tuple[str, ...] = ()                       # ".example.org" from "*.example.org"
    internal_origins: frozenset[tuple[str, int]] = frozenset()
    internal_networks: tuple[Network, ...] = ()

    @classmethod
    def for_source(cls, source: Source) -> FetchPolicy:
        starts = [o for o in map(origin, source.start_urls) if o is not None]
        extra = [h.lower().rstrip(".") for h in source.fetch.hosts]
        hosts = {h for h, _ in starts} | {h for h in extra if not h.startswith("*.")}
        suffixes = tuple(h[1:] for h in extra if h.startswith("*."))
        allowed = [parse_internal(e) for e in source.fetch.internal]
        origins = {o for o in starts if ip_literal(o[0]) is not None or o[0] == "localhost"}
        origins |= {a for a in allowed if isinstance(a, tuple)}
        networks = tuple(a for a in allowed if not isinstance(a, tuple))
        return cls(frozenset(hosts), suffixes, frozenset(origins), networks)

    def refuse_url(self, url: str) -> str | None:
        """Why ``url`` may not be fetched at all (length, scheme, host), or None."""
        if (reason := too_long(url)) is not None:
            return reason
        where = origin(url)
        if where is None:
            return f"{url!r} is not a fetchable http(s) URL"
        host = where[0]
        if host not in self.hosts and not any(host.endswith(s) for s in self.suffixes):
            return (f"host {host!r} is not one of this source's hosts ({', '.join(sorted(self.hosts))}); "
                    "add it to the source's fetch.hosts if it should be crawled")
        literal = ip_literal(host)
        return self.refuse_address(url, literal) if literal is not None else None

    def refuse_address(self, url: str, ip: IP) -> str | None:
        """Why ``url`` may not be fetched from address ``ip``, or None."""
        if not is_internal(ip):
            return None
        where = origin(url)
        if where in self.internal_origins or any(ip in net for net in self.internal_networks
                                                 if net.version == ip.version):
            return None
        return (f"{url} resolves to the internal address {ip} (private, loopback, link-local or metadata), "
                "which this source does not allow (fetch.internal)")

    async def refuse_resolved(self, url: str, addresses: Iterable[str] | None = None) -> str | None:
        """Both checks, resolving the host name (``addresses``: already resolved, e.g. by Scrapy's cache)."""
        reason = self.refuse_url(url)
        if reason is not None:
            return reason
        return await self.refuse_resolved_address(url, addresses)

    async def refuse_resolved_address(self, url: str, addresses: Iterable[str] | None = None) -> str | None:
        """The address check alone, for a URL :meth:`refuse_url` has passed."""
        host, port = origin(url) or ("", 0)
        if ip_literal(host) is not None:
            return None
        if addresses is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                return None  # does not resolve: the download fails on its own, with a DNS error
            addresses = [str(info[4][0]) for info in infos]
        for address in addresses:
            ip = ip_literal(address.split("%", 1)[0])
            reason = self.refuse_address(url, ip) if ip is not None else None
            if reason is not None:
                return reason
        return None

    async def abort_request(self, request: Any) -> bool:
        """``PLAYWRIGHT_ABORT_REQUEST``: refuse a browser request (navigation or subresource)."""
        if not request.url.startswith(("http://", "https://")):
            return False  # data:, blob: and the like never leave the browser
        return await self.refuse_resolved(request.url) is not None


class FetchPolicyMiddleware:
    """Downloader middleware: refuses requests before they are sent and responses from refused addresses."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._policy: FetchPolicy | None = None
        # "scheme://netloc" prefixes whose URL check passed: the check depends on nothing else, and a crawl asks
        # it of one origin thousands of times. Addresses are still checked on every request (DNS may change).
        self._hosts_ok: set[str] = set()
        self._answers_ok: set[tuple[str, str]] = set()   # (prefix, address) pairs whose answer check passed
        self._literals: set[str] = set()   # of those prefixes, the ones naming an IP address: nothing to resolve

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchPolicyMiddleware:
        return cls(crawler)

    def policy(self, spider: Spider | None) -> FetchPolicy | None:
        if self._policy is None:
            source = getattr(spider or self.crawler.spider, "source", None)
            self._policy = FetchPolicy.for_source(source) if isinstance(source, Source) else None
        return self._policy

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        policy = self.policy(spider)
        if policy is None:
            return
        url, prefix = request.url, origin_prefix(request.url)
        if (reason := too_long(url)) is not None:    # checked on every URL: the cache below is per origin
            raise FetchRefused(reason)
        if prefix not in self._hosts_ok:
            reason = policy.refuse_url(url)
            if reason is not None:
                raise FetchRefused(reason)
            self._hosts_ok.add(prefix)
            if ip_literal((origin(url) or ("", 0))[0]) is not None:
                self._literals.add(prefix)
        if request.meta.get("playwright") or prefix in self._literals:
            return  # an IP literal: refuse_url has checked the address itself
        reason = await policy.refuse_resolved_address(url, await _scrapy_resolve(url))
        if reason is not None:
            raise FetchRefused(reason)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        policy = self.policy(spider)
        if policy is None or response.ip_address is None:
            return response
        answered = (origin_prefix(response.url), str(response.ip_address))
        if answered in self._answers_ok:
            return response
        ip = ip_literal(answered[1])
        if ip is not None:
            reason = policy.refuse_address(response.url, ip)
            if reason is not None:
                raise FetchRefused(f"answered from a refused address: {reason}")
        self._answers_ok.add(answered)
        return response


def origin_prefix(url: str) -> str:
    """``scheme://netloc`` as written (up to the first ``/``, ``?`` or ``#`` after ``://``): what
    :meth:`FetchPolicy.refuse_url` reads of a URL, so its verdict can be remembered per prefix."""
    start = url.find("://") + 3
    if start < 3:
        return url
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return url[:min(ends)] if ends else url


async def _scrapy_resolve(url: str) -> list[str] | None:
    """The address Scrapy's own (caching) resolver gives, i.e. the one the download will connect to."""
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor

    host = (origin(url) or ("", 0))[0]
    if not host or ip_literal(host) is not None:
        return None
    try:
        address = await maybe_deferred_to_future(reactor.resolve(host))  # type: ignore[arg-type]
    except Exception:
        return None  # does not resolve: the download reports the DNS error itself
    return [str(address)]
