"""The crawls ``bench_crawl`` times, each in a process of its own: listwatch's and a bare Scrapy spider's.

``python tests/benchmarks/crawl_workers.py KIND TARGET --data-dir DIR [--core N] [--profile P] [--no-freeze]``
(KIND ``listwatch`` with a source file, or ``bare`` with the site's URL). The worker pins itself to ``--core``,
builds its crawler, prints ``READY`` and waits for a line on stdin, so that the parent can start two crawls at
the same moment; then it crawls and prints ``BENCH-RESULT {json}``. Each crawl measures itself from its first
request to ``spider_closed``: seconds, CPU seconds (user and system), time spent runnable but waiting for a CPU,
CPU spent in the cyclic garbage collector, context switches, page faults and peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

RESULT_MARK = "BENCH-RESULT "


class Meter:
    """Clocks read at the crawl's first request and at its end."""

    def __init__(self) -> None:
        self.marks: dict[str, dict[str, float]] = {}
        self.responses, self.go = 0, 0.0
        self.gc_cpu, self.gc_runs, self._gc_started = 0.0, 0, 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.process_time()
        else:
            self.gc_cpu += time.process_time() - self._gc_started
            self.gc_runs += 1

    def mark(self, name: str) -> None:
        if name in self.marks:   # "first" fires on every request: read the clocks only once
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.marks[name] = {"wall": time.perf_counter(), "user": usage.ru_utime, "system": usage.ru_stime,
                            "cpu": time.process_time(), "wait": _run_queue_wait(), "gc": self.gc_cpu,
                            "gc_runs": self.gc_runs, "minflt": usage.ru_minflt, "nvcsw": usage.ru_nvcsw,
                            "nivcsw": usage.ru_nivcsw}

    def connect(self, crawler: Any) -> None:
        from scrapy import signals

        crawler.signals.connect(lambda **_: self.mark("first"), signal=signals.request_reached_downloader, weak=False)
        crawler.signals.connect(self._response, signal=signals.response_received, weak=False)
        crawler.signals.connect(lambda **_: self._closed(crawler), signal=signals.spider_closed, weak=False)

    def _response(self, **_: Any) -> None:
        self.responses += 1

    def _closed(self, crawler: Any) -> None:
        self.mark("closed")
        # Unchanged pages confirmed by crawlers.revalidate are answers Scrapy never saw (no response_received).
        self.responses += crawler.stats.get_value("listwatch/revalidated", 0)

    def result(self, **extra: Any) -> dict[str, Any]:
        first, closed = self.marks["first"], self.marks["closed"]
        delta = {key: closed[key] - first[key] for key in first}
        return {"seconds": delta["wall"], "cpu": delta["cpu"], "user": delta["user"], "system": delta["system"],
                "cpu_wait": delta["wait"], "gc_cpu": delta["gc"], "gc_runs": delta["gc_runs"],
                "minflt": delta["minflt"], "voluntary_switches": delta["nvcsw"],
                "involuntary_switches": delta["nivcsw"], "responses": self.responses, "rss_kb": _peak_rss_kb(),
                "started": first["wall"], "ended": closed["wall"], "go": self.go, **extra}


def _run_queue_wait() -> float:
    """Seconds this (the reactor's) thread has spent runnable but waiting for a CPU taken by other processes
    (``/proc/thread-self/schedstat``, second field, ns); 0 where the kernel does not say."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _peak_rss_kb() -> int:
    """This process's own peak (VmHWM); ru_maxrss would include the parent's high-water mark across fork+exec."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def _freeze() -> None:
    """What ``crawlers.run.run_crawls`` does before crawling; a checkout older than it (``--ab``) did nothing."""
    try:
        from crawlers.run import freeze_startup_objects
    except ImportError:
        return
    freeze_startup_objects()


def _start(process: Any, profile: Path | None, meter: Meter) -> None:
    """Tell the parent we are ready, wait for its go, and crawl (under cProfile when asked)."""
    print("READY", flush=True)
    sys.stdin.readline()
    meter.go = time.perf_counter()
    if profile is not None:
        import cProfile

        cProfile.runctx("process.start()", globals(), {"process": process}, str(profile))
    else:
        process.start()


def listwatch_worker(source_path: Path, data_dir: Path, profile: Path | None, freeze: bool = True) -> dict[str, Any]:
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings
    from scrapy.utils.reactor import install_reactor

    from archive.catalog import open_catalog
    from archive.dedup import DedupIndex
    from archive.indexer import register_warc
    from crawlers import settings as defaults
    from crawlers.report import CrawlReport
    from crawlers.run import CrawlOptions, crawl_settings, new_run_id, run_paths
    from crawlers.sources import load_source
    from crawlers.spiders.listing import ListingSpider

    source = load_source(source_path)
    catalog = open_catalog(f"sqlite:///{data_dir / 'catalog.db'}")
    dedup = DedupIndex(catalog, spool_dir=data_dir / "spool")
    options = CrawlOptions(data_dir=data_dir, log_level="WARNING", dedup=dedup)
    run_id = new_run_id()
    base = Settings()
    base.setmodule(defaults, priority="default")
    base.set("LOG_LEVEL", "WARNING", priority="cmdline")
    install_reactor(defaults.TWISTED_REACTOR, getattr(defaults, "ASYNCIO_EVENT_LOOP", None))
    process = CrawlerProcess(base)
    crawler = Crawler(ListingSpider, crawl_settings(source, run_id, options))
    crawler.listwatch_dedup = dedup  # type: ignore[attr-defined]
    meter = Meter()
    meter.connect(crawler)
    process.crawl(crawler, source=source, run_id=run_id)
    if freeze:
        _freeze()
    _start(process, profile, meter)
    _, run_dir = run_paths(options, source.id, run_id)
    report = CrawlReport.load(run_dir / "run.json")
    result = meter.result(pages_ok=report.pages_ok, items=report.items, warc_bytes=report.warc_bytes,
                          problems=[p.message for p in [*report.problems, *report.challenges]][:3],
                          items_bytes=(run_dir / "items.jsonl").stat().st_size, floor=_floor(report.warc_files))
    for path in report.warc_files:   # after timing: what the pipeline does before the next crawl
        register_warc(catalog, Path(path), source_id=source.id, run_id=run_id)
    return result


def _floor(warcs: list[str]) -> int:
    """Bytes of one request + one revisit record per page: what an unchanged re-crawl cannot go below."""
    from warcio.archiveiterator import ArchiveIterator

    total = 0
    for path in warcs:
        with open(path, "rb") as fh:
            records = ArchiveIterator(fh)
            for record in records:
                kind = record.rec_type
                record.content_stream().read()
                if kind in ("request", "revisit"):
                    total += records.get_record_length()
    return total


def bare_worker(url: str, data_dir: Path, profile: Path | None = None, uvloop: bool = True) -> dict[str, Any]:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings
    from scrapy.utils.reactor import install_reactor

    class Bare(Spider):
        """The same crawl as listwatch's source, written the plain Scrapy way."""

        name = "bare"

        async def start(self) -> Any:
            yield Request(f"{url}/list/index.html", callback=self.listing, cb_kwargs={"first": True})

        def listing(self, response: Any, first: bool = False) -> Any:
            if first:
                total = int(response.css(".pager").re_first(r"共\s*(\d+)\s*页"))
                for n in range(1, total):
                    yield response.follow(f"index_{n}.html", callback=self.listing)
            for li in response.css("ul.list > li"):
                item = {"title": li.css("a::text").get(), "url": response.urljoin(li.css("a::attr(href)").get()),
                        "date": li.css("span.date::text").get()}
                yield Request(item["url"], callback=self.detail, cb_kwargs={"item": item})

        def detail(self, response: Any, item: dict[str, Any]) -> Any:
            yield {**item, "heading": response.css("h1::text").get(), "organizer": response.css("td.org::text").get(),
                   "deadline": response.css("td.deadline::text").get()}

    # CONCURRENT_ITEMS as listwatch sets it: with Scrapy's default (100 asyncio tasks per response) the bare
    # spider paid 1-1.5 ms more CPU a page (a third of its cost) for an engine setting, not for anything
    # listwatch does differently. The event loop too (uvloop: 2-6 % less CPU for either), unless told not to.
    from crawlers import settings as listwatch_settings

    loop = getattr(listwatch_settings, "ASYNCIO_EVENT_LOOP", None) if uvloop else None
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor", loop)
    settings = Settings({"ASYNCIO_EVENT_LOOP": loop, "CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
                         "CONCURRENT_ITEMS": listwatch_settings.CONCURRENT_ITEMS, "LOG_LEVEL": "WARNING",
                         "ROBOTSTXT_OBEY": True, "TELNETCONSOLE_ENABLED": False,
                         "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
                         "FEEDS": {str(data_dir / "items.jsonl"): {"format": "jsonlines", "encoding": "utf8"}}})
    process = CrawlerProcess(settings)
    crawler = Crawler(Bare, settings)
    meter = Meter()
    meter.connect(crawler)
    process.crawl(crawler)
    _start(process, profile, meter)
    return meter.result()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python tests/benchmarks/crawl_workers.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["listwatch", "bare"])
    parser.add_argument("target", help="listwatch: the source file; bare: the site's URL")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--core", type=int, help="pin this crawl (all its threads) to this CPU")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the crawl here")
    parser.add_argument("--asyncio-loop", action="store_true",
                        help="bare: asyncio's own event loop, not the one listwatch uses (uvloop)")
    parser.add_argument("--no-freeze", action="store_true",
                        help="listwatch: skip gc.freeze of start-up objects (for an A/B of it)")
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    if args.kind == "listwatch":
        result = listwatch_worker(Path(args.target), args.data_dir, args.profile, freeze=not args.no_freeze)
    else:
        result = bare_worker(args.target, args.data_dir, args.profile, uvloop=not args.asyncio_loop)
    import crawlers

    result["code"] = str(Path(crawlers.__file__).parents[1])   # which checkout's listwatch ran
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
