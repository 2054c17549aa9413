"""Detail pages fetched from the listing page's callback, past Scrapy's scheduler and spider middlewares.

A listing page names its detail pages; the spider used to yield a ``Request`` for each, which Scrapy queued in
its scheduler (with a dupefilter fingerprint), downloaded, and handed back through the scraper and the
spider-middleware chain to ``parse_detail``. Those layers cost as much for each detail page as the page's own
extraction, and do nothing these crawls need. Here the listing callback downloads them itself with
``engine.download_async`` (Scrapy's public API, 2.14+), which applies every downloader middleware (robots.txt,
the fetch policy, the WARC capture, cookies, retries, redirects, timeouts) and the downloader's slots
(politeness), then runs ``parse_detail`` on each answer as Scrapy would have:

- an answer Scrapy's ``HttpErrorMiddleware`` would refuse (404, 500 after retries…) and a download that failed
  go to the spider's errback (``failed``), as they did, with the request that failed (after a redirect, the
  redirected one: :class:`FailedRequestMiddleware` names it);
- the Referer is the listing page's, chosen by Scrapy's ``RefererMiddleware`` and its policy;
- a URL already fetched this way in the crawl is not fetched again (what the dupefilter did);
- the crawl's concurrency (``politeness.concurrency``) holds for Scrapy's requests and these together
  (:mod:`crawlers.places`).

An unchanged page is first asked about by :mod:`crawlers.revalidate` (one conditional GET past the downloader
too); only what it cannot confirm comes here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.spidermiddlewares.referer import RefererMiddleware
from twisted.python.failure import Failure

from crawlers.places import Places
from crawlers.revalidate import Revalidator

if TYPE_CHECKING:
    from crawlers.spiders.listing import ListingSpider

FAILED_REQUEST = "listwatch_request"


class FailedRequestMiddleware:
    """Downloader middleware (innermost): names on a download's exception the request that failed, which after a
    redirect is not the one asked for (Scrapy's scheduler path hands its errback that one; so does this)."""

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        setattr(exception, FAILED_REQUEST, request)


class DirectDetails:
    """One crawl's detail pages, downloaded from the listing callbacks."""

    def __init__(self, spider: ListingSpider, crawler: Crawler, places: Places,
                 revalidator: Revalidator | None = None) -> None:
        self.spider = spider
        self.crawler = crawler
        self.places = places
        self.revalidator = revalidator
        self.fetched: set[str] = set()
        # Pages past this many wait here, as Request objects only (memory bounded by concurrency, not site size).
        self.waiting = asyncio.Semaphore(crawler.settings.getint("CONCURRENT_REQUESTS", 16))
        self.allowed = set(crawler.settings.getlist("HTTPERROR_ALLOWED_CODES")) \
            if not crawler.settings.getbool("HTTPERROR_ALLOW_ALL") else None
        self._referer: RefererMiddleware | None = None

    @staticmethod
    def takes(request: Request) -> bool:
        """Plain HTTP detail pages (a rendered page needs the scheduler's path to its browser page)."""
        return not request.meta.get("playwright")

    async def fetch(self, requests: list[Request], listing: Response) -> AsyncIterator[Any]:
        """Download ``requests`` (detail pages named by ``listing``) and yield what ``parse_detail`` and the
        errback yield for them (items are written by the spider; attachments are requests for Scrapy)."""
        fresh = []
        for request in requests:
            if request.url in self.fetched:
                continue  # as the dupefilter did: the first listing naming a page fetches it
            self.fetched.add(request.url)
            self._set_referer(request, listing)
            fresh.append(request)
        for outs in await asyncio.gather(*(self._one(r) for r in fresh)):
            for out in outs:
                yield out

    async def _one(self, request: Request) -> list[Any]:
        async with self.waiting:
            if self.revalidator is not None:
                unchanged = await self.revalidator.check(request, request.meta["listwatch_rules"])
                if unchanged is not None:
                    return list(self.spider.unchanged_detail(request.url, request.cb_kwargs["item"], unchanged))
            engine = self.crawler.engine
            assert engine is not None
            try:
                await self.places.free()
                response = await engine.download_async(request)  # in the downloader's count from its first step
            except Exception as exc:  # every download failure goes to the errback, as in Scrapy
                return await self._errback(getattr(exc, FAILED_REQUEST, request), Failure(exc))
            finally:
                self.places.released()
        if not self._accepted(request, response):
            return await self._errback(response.request or request,
                                       Failure(HttpError(response, "Ignoring non-200 response")))
        try:
            return [out async for out in self.spider.parse_detail(response, **request.cb_kwargs)]
        except Exception:  # a callback error is the page's, reported as Scrapy reports it
            self.spider.callback_error(Failure(), response, self.spider)
            return []

    async def _errback(self, request: Request, failure: Failure) -> list[Any]:
        failure.request = request  # type: ignore[attr-defined]  # as Scrapy hands errbacks their request
        return [out async for out in self.spider.failed(failure)]

    def _accepted(self, request: Request, response: Response) -> bool:
        """What Scrapy's HttpErrorMiddleware lets through to a callback."""
        status = response.status
        if 200 <= status < 300 or self.allowed is None or request.meta.get("handle_httpstatus_all"):
            return True
        return status in self.allowed or status in request.meta.get("handle_httpstatus_list", ())

    def _set_referer(self, request: Request, listing: Response) -> None:
        """The Referer Scrapy's RefererMiddleware gives a request yielded from ``listing``'s callback."""
        if not self.crawler.settings.getbool("REFERER_ENABLED", True):
            return
        if self._referer is None:
            self._referer = RefererMiddleware(self.crawler.settings)
        referrer = self._referer.policy(listing, request).referrer(listing.url, request.url)
        if referrer is not None:
            request.headers.setdefault("Referer", referrer)
