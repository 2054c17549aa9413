"""Capture benchmarks: WARC capture overhead on a static crawl, and the rendered-crawl rate.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_capture --pages 2000 --rounds 3

The machine is shared and noisy, so only ratios measured in the same run mean much: the variants of
each benchmark alternate round by round (A, B, A, B, …) and the medians are compared.

1. Static capture overhead: ``DemoSite(bench_pages=N)`` runs in this process; each crawl of its
   ``/bench/list/`` section runs in its own subprocess (a Twisted reactor cannot restart), once with
   WARC capture on and once with ``CrawlOptions(capture=False)``. Pages/s is measured inside the
   crawl process, from the first request reaching the downloader to ``spider_closed`` (after the
   WARC file is fsynced and renamed), so interpreter and Scrapy start-up are excluded.
2. Browser crawl rate: an academy-shaped JavaScript listing rendered in Chromium with its detail
   pages rendered too (``detail.render: true``), DOM, screenshot and every subresource archived, at
   ``politeness.concurrency`` 4 and 8 (= ``CONCURRENT_REQUESTS`` and
   ``PLAYWRIGHT_MAX_PAGES_PER_CONTEXT``). ``--copies K`` lists every detail page K times (with a
   ``?copy=k`` query the demo site ignores) to get more rendered pages per crawl.

Each crawl subprocess is this module run with ``--worker``; it prints one ``BENCH-RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.listing_sources import listing_source

ROOT = Path(__file__).resolve().parents[2]
RESULT_MARK = "BENCH-RESULT "
COPIES_ENV = "LISTWATCH_BENCH_COPIES"
STATIC_TARGET = 0.85
BROWSER_TARGET = 2.0


def static_source(url: str, pages: int) -> str:
    """The demo site's bench listing of ``pages`` pages, every page queued from page 1's total."""
    return listing_source("bench-static", "bench static listing", f"{url}/bench/list/index.html", pages=pages,
                          dated=True, concurrency=16, robots=True, limits={"max_pages": pages + 100})


# The academy source (crawlers/demo/sources/academy.yaml) with detail pages rendered too. Its
# ``wait_for: "#loaded"`` would make every rendered detail page time out (detail pages have no
# #loaded), so the benchmark waits for "#loaded, table.info": the listing's or the detail's marker.
BROWSER_SOURCE = """\
id: bench-academy
name: bench academy (rendered listing and details)
start_urls: ["{url}/academy/index.html"]
render: {{mode: browser, wait_for: "#loaded, table.info", wait_until: domcontentloaded, screenshot: true}}
pagination:
  kind: next_link
  next: "a.next::attr(href)"
items:
  selector: "#list li.item"
  key: url
  fields:
    id: "li::attr(data-id)"
    title: "a::text"
    url: {{css: "a::attr(href)", type: url}}
    date: {{css: "span.date::text", type: date}}
detail:
  link: url
  render: true
  table:
    rows: "table.info tr"
    labels: {{主办单位: organizer, 承办单位: co_organizer, 报名截止: deadline, 培训时间: period, 地点: location}}
    types: {{deadline: date}}
{hook}politeness: {{delay: 0, concurrency: {concurrency}}}
limits: {{max_pages: 100000}}
"""


# -- hook used by the browser source ------------------------------------------------------------

def replicate_details(response: Any, found: list[dict[str, Any]], source: Any) -> list[dict[str, Any]]:
    """Listing hook: every item ``K`` times (``?copy=k``), so each detail page is rendered K times."""
    copies = int(os.environ.get(COPIES_ENV, "1"))
    out = list(found)
    for k in range(2, copies + 1):
        for fields in found:
            url = fields.get("url")
            if isinstance(url, str):
                out.append({**fields, "url": f"{url}{'&' if '?' in url else '?'}copy={k}"})
    return out


# -- worker: one crawl in this process -----------------------------------------------------------

def _bench_spider() -> type:
    from scrapy import signals
    from scrapy.crawler import Crawler

    from crawlers.spiders.listing import ListingSpider

    class BenchSpider(ListingSpider):
        """``ListingSpider`` plus timestamps; a null capture object when WARC capture is off."""

        timing: dict[str, float]

        @classmethod
        def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> BenchSpider:
            spider = super().from_crawler(crawler, *args, **kwargs)
            spider.timing = {"responses": 0}
            crawler.signals.connect(spider._t_opened, signal=signals.spider_opened)
            crawler.signals.connect(spider._t_request, signal=signals.request_reached_downloader)
            crawler.signals.connect(spider._t_response, signal=signals.response_received)
            crawler.signals.connect(spider._t_closed, signal=signals.spider_closed)
            return spider  # type: ignore[return-value]

        def _mark(self, name: str) -> None:
            self.timing.setdefault(name, time.perf_counter())
            self.timing.setdefault(name + "_cpu", time.process_time())

        def _t_opened(self, spider: Any) -> None:
            self._mark("opened")

        def _t_request(self, request: Any, spider: Any) -> None:
            self._mark("first_request")

        def _t_response(self, response: Any, request: Any, spider: Any) -> None:
            self.timing["responses"] += 1

        def _t_closed(self, spider: Any, reason: str) -> None:
            self._mark("closed")

    return BenchSpider


def worker(source_path: Path, data_dir: Path, capture: bool, profile: Path | None) -> dict[str, Any]:
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings
    from scrapy.utils.reactor import install_reactor

    from crawlers import settings as defaults
    from crawlers.report import CrawlReport
    from crawlers.run import CrawlOptions, crawl_settings, new_run_id, run_paths
    from crawlers.sources import load_source

    source = load_source(source_path)
    options = CrawlOptions(data_dir=data_dir, capture=capture, log_level="WARNING")
    run_id = new_run_id()
    base = Settings()
    base.setmodule(defaults, priority="default")
    base.set("LOG_LEVEL", options.log_level, priority="cmdline")
    install_reactor(defaults.TWISTED_REACTOR, getattr(defaults, "ASYNCIO_EVENT_LOOP", None))
    process = CrawlerProcess(base)
    crawler = Crawler(_bench_spider(), crawl_settings(source, run_id, options))
    process.crawl(crawler, source=source, run_id=run_id)
    if profile is not None:
        import cProfile

        cProfile.runctx("process.start()", globals(), {"process": process}, str(profile))
    else:
        process.start()
    _, run_dir = run_paths(options, source.id, run_id)
    report = CrawlReport.load(run_dir / "run.json")
    timing = crawler.spider.timing  # type: ignore[union-attr]
    return {
        "capture": capture,
        "pages_ok": report.pages_ok,
        "pages_failed": report.pages_failed,
        "items": report.items,
        "problems": [f"{p.role} {p.url}: {p.message}" for p in [*report.problems, *report.challenges]][:5],
        "warc_bytes": report.warc_bytes,
        "stop_reason": report.stop_reason,
        "responses": timing["responses"],
        "startup": timing["first_request"] - timing["opened"],
        "crawl": timing["closed"] - timing["first_request"],
        "total": timing["closed"] - timing["opened"],
        "crawl_cpu": timing["closed_cpu"] - timing["first_request_cpu"],
        "stats_elapsed": crawler.stats.get_value("elapsed_time_seconds") if crawler.stats else None,
    }


# -- parent: site, subprocesses, rounds, report -----------------------------------------------------

def run_crawl(source_path: Path, *, capture: bool = True, env: dict[str, str] | None = None,
              timeout: float = 1200, profile: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lw-bench-data-") as data_dir:
        cmd = [sys.executable, "-m", "tests.benchmarks.bench_capture", "--worker", str(source_path),
               "--data-dir", data_dir]
        if not capture:
            cmd.append("--no-capture")
        if profile is not None:
            cmd += ["--profile", str(profile)]
        full_env = {**os.environ, "LISTWATCH_SETTINGS": str(Path(data_dir) / "none.yaml"), **(env or {})}
        done = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line.removeprefix(RESULT_MARK))  # type: ignore[no-any-return]
    raise RuntimeError(f"crawl subprocess printed no result (exit {done.returncode}):\n"
                       f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")


def interleave(variants: dict[str, Callable[[], dict[str, Any]]], rounds: int,
               show: Callable[[str, dict[str, Any]], str]) -> dict[str, list[dict[str, Any]]]:
    """Run the variants A, B, A, B, … for ``rounds`` rounds; print one line per crawl."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for r in range(1, rounds + 1):
        for name, run in variants.items():
            result = run()
            results[name].append(result)
            print(f"  round {r} {name:<14} {show(name, result)}", flush=True)
    return results


def warm_site(url: str, paths: list[str]) -> None:
    """Fetch every page once so the demo site's response cache is filled before timing."""
    def get(path: str) -> None:
        with urllib.request.urlopen(url + path, timeout=30) as resp:
            resp.read()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, paths))


def _rate(result: dict[str, Any], pages: int) -> float:
    return pages / result["crawl"] if result["crawl"] > 0 else 0.0


def _check(result: dict[str, Any], expect: dict[str, int]) -> str:
    wrong = {k: result["pages_ok"][k] for k, v in expect.items() if result["pages_ok"][k] != v}
    if wrong or result["problems"]:
        return f"  INVALID: expected {expect}, got {result['pages_ok']}; {result['problems']}"
    return ""


def bench_static(work: Path, pages: int, rounds: int) -> float:
    from crawlers.demo.site import DemoSite

    print(f"\n== 1. Static capture overhead: {pages} bench listing pages x 20 items, template pagination "
          f"(all pages queued from page 1's total), concurrency 16, robots obeyed ==", flush=True)
    with DemoSite(bench_pages=pages) as site:
        source = work / "bench-static.yaml"
        source.write_text(static_source(site.url, pages), encoding="utf-8")
        warm_site(site.url, ["/robots.txt", "/bench/list/index.html",
                             *(f"/bench/list/index_{i}.html" for i in range(1, pages))])

        def show(name: str, r: dict[str, Any]) -> str:
            per_page = f"{r['warc_bytes'] / pages:,.0f} WARC B/page" if r["capture"] else ""
            return (f"{_rate(r, pages):7.1f} pages/s  crawl {r['crawl']:6.2f} s  "
                    f"cpu {1000 * r['crawl_cpu'] / pages:5.2f} ms/page  {per_page}"
                    f"{_check(r, {'listing': pages})}")

        results = interleave({
            "capture on": lambda: run_crawl(source, capture=True),
            "capture off": lambda: run_crawl(source, capture=False),
        }, rounds, show)
    on = statistics.median(_rate(r, pages) for r in results["capture on"])
    off = statistics.median(_rate(r, pages) for r in results["capture off"])
    per_round = statistics.median(_rate(a, pages) / _rate(b, pages)
                                  for a, b in zip(results["capture on"], results["capture off"], strict=True))
    cpu_on = statistics.median(r["crawl_cpu"] / pages for r in results["capture on"])
    cpu_off = statistics.median(r["crawl_cpu"] / pages for r in results["capture off"])
    warc = statistics.median(r["warc_bytes"] / pages for r in results["capture on"])
    ratio = on / off
    print(f"  median pages/s: capture on {on:.1f}, capture off {off:.1f}")
    print(f"  RATIO capture-on / capture-off (pages/s, medians) = {ratio:.3f}  "
          f"(median of per-round ratios {per_round:.3f}); target >= {STATIC_TARGET}: "
          f"{'PASS' if ratio >= STATIC_TARGET else 'FAIL'}")
    print(f"  crawler CPU per page (median): on {1000 * cpu_on:.2f} ms, off {1000 * cpu_off:.2f} ms "
          f"-> capture costs {1000 * (cpu_on - cpu_off):.2f} ms CPU/page ({cpu_off / cpu_on:.3f} CPU ratio off/on)")
    print(f"  WARC bytes per page (gzip, incl. request + metadata records, robots.txt, warcinfo): {warc:,.0f}")
    return ratio


def bench_browser(work: Path, rounds: int, concurrencies: list[int], copies: int) -> None:
    from crawlers.demo import programmes
    from crawlers.demo.site import DemoSite

    items = len(programmes.listed("academy", 0))
    listing_pages = len(programmes.pages(programmes.listed("academy", 0)))
    details = items * copies
    rendered = listing_pages + details
    print(f"\n== 2. Browser crawl rate: academy-shaped JS listing, {listing_pages} rendered listing pages + "
          f"{details} rendered detail pages ({items} x {copies} cop{'y' if copies == 1 else 'ies'}) = {rendered} "
          f"rendered pages/crawl; DOM + full-page screenshot + subresources archived ==", flush=True)
    with DemoSite() as site:
        hook = "hook: tests.benchmarks.bench_capture:replicate_details\n" if copies > 1 else ""
        sources = {}
        for c in concurrencies:
            sources[c] = work / f"bench-academy-{c}.yaml"
            sources[c].write_text(BROWSER_SOURCE.format(url=site.url, hook=hook, concurrency=c), encoding="utf-8")
        env = {COPIES_ENV: str(copies)}

        def show(name: str, r: dict[str, Any]) -> str:
            return (f"{_rate(r, rendered):5.2f} pages/s excl. browser start-up "
                    f"({rendered / r['total']:5.2f} incl.; start-up {r['startup']:4.2f} s; crawl {r['crawl']:6.2f} s; "
                    f"{r['responses']} responses; {r['warc_bytes'] / rendered:,.0f} WARC B/page)"
                    f"{_check(r, {'listing': listing_pages, 'detail': details})}")

        results = interleave({f"concurrency {c}": (lambda c=c: run_crawl(sources[c], env=env))  # type: ignore[misc]
                              for c in concurrencies}, rounds, show)
    medians = {}
    for c in concurrencies:
        runs = results[f"concurrency {c}"]
        medians[c] = statistics.median(_rate(r, rendered) for r in runs)
        incl = statistics.median(rendered / r["total"] for r in runs)
        print(f"  concurrency {c}: median {medians[c]:.2f} rendered pages/s excl. browser start-up "
              f"({incl:.2f} incl.); target >= {BROWSER_TARGET}: {'PASS' if medians[c] >= BROWSER_TARGET else 'FAIL'}")
    first = concurrencies[0]
    for c in concurrencies[1:]:
        print(f"  RATIO concurrency {c} / concurrency {first} = {medians[c] / medians[first]:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_capture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000, help="bench listing pages (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each benchmark (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8],
                        help="browser crawl concurrencies to compare (default 4 8)")
    parser.add_argument("--copies", type=int, default=2,
                        help="render each academy detail page this many times (default 2)")
    parser.add_argument("--only", choices=["static", "browser"], help="run one benchmark only")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-capture", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = worker(args.worker, args.data_dir, not args.no_capture, args.profile)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return

    print(f"listwatch capture benchmarks: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; rounds {args.rounds}, variants interleaved", flush=True)
    work = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    started = time.perf_counter()
    try:
        if args.only in (None, "static"):
            bench_static(work, args.pages, args.rounds)
        if args.only in (None, "browser"):
            bench_browser(work, args.rounds, args.concurrency, args.copies)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ndone in {time.perf_counter() - started:.0f} s; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
