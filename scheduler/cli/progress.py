"""Live crawl progress: pages, items and errors per source while crawls run.

On a terminal, a small table on stderr redraws a few times a second and disappears when the crawls end
(the results table follows). Elsewhere (a pipe, a log file, CI) one plain line per source is printed
when its crawl finishes, so logs stay readable. Pages and errors come from Scrapy's signals, items from the
crawl's report (the spider writes its items itself: no ``item_scraped`` signal).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from scrapy import signals


@dataclass
class Counts:
    pages: int = 0
    errors: int = 0
    done: bool = False
    spider: Any = None   # the crawl's spider once open

    @property
    def items(self) -> int:
        return self.spider.report.items if self.spider is not None else 0


class CrawlProgress:
    """Pass :meth:`watch` to crawl_and_ingest(watch=…); use as a context manager around it."""

    def __init__(self, console: Console, source_ids: list[str]) -> None:
        self.console = console
        self.counts = {sid: Counts() for sid in source_ids}
        self.started = time.monotonic()
        self._live: Live | None = None
        self._handlers: list[Any] = []   # Scrapy holds signal receivers weakly: keep them alive here

    def watch(self, crawler: Any, source_id: str) -> None:
        counts = self.counts.setdefault(source_id, Counts())

        def page(response: Any, **_: Any) -> None:
            if response.url.endswith("/robots.txt"):   # Scrapy's own fetch, not a page of the listing
                return
            counts.pages += 1
            if response.status >= 400:
                counts.errors += 1

        def opened(spider: Any, **_: Any) -> None:
            counts.spider = spider

        def error(**_: Any) -> None:
            counts.errors += 1

        def closed(**_: Any) -> None:
            counts.done = True
            if self._live is None:
                self.console.print(self.line(source_id), highlight=False, soft_wrap=True)

        for handler, signal in ((page, signals.response_received), (opened, signals.spider_opened),
                                (error, signals.spider_error), (error, signals.item_error), (closed,
                                signals.spider_closed)):
            self._handlers.append(handler)
            crawler.signals.connect(handler, signal=signal)

    def line(self, source_id: str) -> str:
        c = self.counts[source_id]
        state = "done" if c.done else "crawling"
        return f"{source_id}: {state}, {c.pages} pages, {c.items} items, {c.errors} errors"

    def render(self) -> Table:
        table = Table(box=None, pad_edge=False, title=f"crawling… {time.monotonic() - self.started:.0f} s",
                      title_justify="left")
        table.add_column("source", no_wrap=True)
        for column in ("pages", "items", "errors"):
            table.add_column(column, justify="right", no_wrap=True)
        table.add_column("", no_wrap=True)
        for sid, c in self.counts.items():
            table.add_row(sid, str(c.pages), str(c.items), str(c.errors), "done" if c.done else "…")
        return table

    def __enter__(self) -> CrawlProgress:
        if self.console.is_terminal:
            self._live = Live(get_renderable=self.render, console=self.console, transient=True,
                              refresh_per_second=4)
            self._live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
