"""Stop promptly: when a crawl closes (time limit, page limit, SIGTERM), drop requests waiting out a delay.

Scrapy closes a spider only once every request handed to the downloader is done, and a request waiting in a
downloader slot for its politeness delay (``DOWNLOAD_DELAY``, up to 1.5 × the source's ``delay``) counts as
handed over: a crawl with a long delay then outlives its ``max_seconds`` and a SIGTERM by that much. This
extension wraps the engine's ``close_spider_async`` (what the time limit, the page limit and a signal all call)
so that, first, every waiting request is failed with ``IgnoreRequest`` (its page counts as failed: the crawl is
incomplete, as a stopped crawl is) and the slots' delay timers are cancelled. Requests already on the wire
finish normally, bounded by ``limits.timeout``.
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from twisted.python.failure import Failure


class PromptStop:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.reason: str | None = None   # why the crawl is closing, once it is (requests sent past Scrapy stop)
        crawler.signals.connect(self._wrap, signal=signals.engine_started)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PromptStop:
        return cls(crawler)

    def _wrap(self) -> None:
        engine = self.crawler.engine
        assert engine is not None
        original = engine.close_spider_async

        async def close_spider_async(*, reason: str = "cancelled") -> None:
            self.reason = self.reason or reason
            self.drain(reason)
            await original(reason=reason)

        engine.close_spider_async = close_spider_async  # type: ignore[method-assign]

    def drain(self, reason: str) -> int:
        """Fail every request still waiting in a downloader slot; returns how many."""
        engine = self.crawler.engine
        dropped = 0
        slots: dict[str, Any] = getattr(getattr(engine, "downloader", None), "slots", {})
        for slot in slots.values():
            if slot.latercall is not None:
                slot.latercall.cancel()
                slot.latercall = None
            while slot.queue:
                request, waiting = slot.queue.popleft()
                waiting.errback(Failure(IgnoreRequest(f"crawl stopping ({reason}) before its delay was over: "
                                                      f"{request.url}")))
                dropped += 1
        return dropped
