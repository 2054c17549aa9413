"""A crawl's concurrency, shared by Scrapy's engine and the requests listwatch sends past it.

Detail pages downloaded from a listing callback (``crawlers.spiders.direct``) and unchanged-page probes
(``crawlers.revalidate``) do not pass Scrapy's engine, which is what holds a crawl to ``CONCURRENT_REQUESTS``
(``politeness.concurrency``): it starts a request only while its downloader has fewer in progress
(``Downloader.needs_backout``). The per-host slot limit alone does not hold: Scrapy 2.19's slot queue starts
every queued request it sees room for before any of them is counted as transferring, so requests queued
together overshoot it (measured: 4 at once with a concurrency of 2). So each request sent past the engine first
takes a place here: it waits while the downloader is full, and is counted in the downloader's ``active`` set
while it runs (a download does that itself; a probe holds a token there), so the engine waits for it in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest

from crawlers.stopping import PromptStop


class Places:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._freed = asyncio.Event()
        self._stop: PromptStop | None = None

    async def free(self) -> Any:
        """Wait for a free place; returns Scrapy's downloader. The caller must take the place before its next
        ``await`` (``downloader.fetch`` does, synchronously, when a download starts). Raises ``IgnoreRequest``
        once the crawl is closing."""
        downloader = self.crawler.engine.downloader  # type: ignore[union-attr]
        self._refuse_when_stopping()
        while downloader.needs_backout():
            self._freed.clear()
            # Woken when a request of ours ends; Scrapy's own end without telling us: look again soon.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await self._freed.wait()
            self._refuse_when_stopping()
        return downloader

    def _refuse_when_stopping(self) -> None:
        """Once the crawl closes (time or page limit, a stop), nothing more is sent: as for a request Scrapy
        still had queued (``crawlers.stopping``), the page fails and the crawl is incomplete."""
        if self._stop is None:
            self._stop = self.crawler.get_extension(PromptStop)
        if self._stop is not None and self._stop.reason is not None:
            raise IgnoreRequest(f"crawl stopping ({self._stop.reason}) before this page was asked for")

    @contextlib.asynccontextmanager
    async def taken(self) -> AsyncIterator[None]:
        """A place held for a request Scrapy's downloader does not see (a probe)."""
        downloader = await self.free()
        token = object()
        downloader.active.add(token)
        try:
            yield
        finally:
            downloader.active.discard(token)
            self.released()

    def released(self) -> None:
        """A place came free: wake our waiters, and the engine, which may have requests waiting for it (it looks
        again on its own only when one of its downloads ends, or every 5 s)."""
        self._freed.set()
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None:
            slot.nextcall.schedule()
