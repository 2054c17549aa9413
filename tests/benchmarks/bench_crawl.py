"""Crawl speed: listwatch's static crawl phase against a bare Scrapy spider and ``wget --warc-file``.

Run from the repository root (one command; about 10 minutes on 2 shared cores)::

    .venv/bin/python -m tests.benchmarks.bench_crawl --rounds 3

A loopback site of 2,000 pages (100 listing pages x 19 items, 1,900 detail pages; ETag and
Last-Modified on every page, 304 to conditional GETs) is served from memory by this process, at two page
weights (6 KB and 40 KB). Each crawl runs in its own subprocess (this module with ``--worker``), at
concurrency 16, and measures itself from its first request to ``spider_closed``:

1. listwatch first crawl (``ListingSpider``, WARC capture on, dedup against an empty catalog) vs a bare
   Scrapy spider included here (same pages, same fields, same concurrency and ``CONCURRENT_ITEMS``, robots.txt
   obeyed, items to a jsonl feed), in
   alternating order, ``--rounds`` times: pages/s, CPU/page and peak RSS ratios (medians).
2. WARC bytes of the listwatch first crawl vs ``wget --warc-file`` of the same site (when wget exists).
3. Unchanged full re-crawl, right after each round's listwatch first crawl, of its data (its WARCs indexed
   into the catalog first, as the pipeline does): WARC bytes vs the floor of one request + one revisit
   record per page, and CPU vs that round's first crawl (medians: a pair minutes apart sees the same load).

The machine is shared: only ratios measured within one run mean much.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]
RESULT_MARK = "BENCH-RESULT "
LISTING_PAGES, PER_PAGE = 100, 19
TARGETS = {"pages/s": 0.9, "cpu/page": 1.3, "rss": 2.0, "wget bytes": 1.2, "floor": 1.1,
           "recrawl cpu": 0.5}
WORDS = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主"
         "发年动同工也能下过子说产种面而方后多定")

SOURCE = """\
id: bench-crawl
name: bench crawl
start_urls: ["{url}/list/index.html"]
pagination:
  kind: template
  template: "index_{{n}}.html"
  total: {{css: ".pager", regex: "共\\\\s*(\\\\d+)\\\\s*页", type: int}}
  max_pages: {pages}
items:
  selector: "ul.list > li"
  key: url
  fields:
    title: "a::text"
    url: {{css: "a::attr(href)", type: url}}
    date: {{css: "span.date::text", type: date}}
detail:
  link: url
  fields:
    heading: "h1::text"
    organizer: "td.org::text"
    deadline: {{css: "td.deadline::text", type: date}}
politeness: {{delay: 0, concurrency: 16, obey_robots: true}}
limits: {{max_pages: 100000}}
"""


# -- the site ---------------------------------------------------------------------------------------

def _filler(seed: int, size: int) -> str:
    """Varied Chinese prose of about ``size`` UTF-8 bytes (compresses like real text)."""
    state, chars = seed * 2654435761 + 1, []
    for _ in range(max(0, size) // 3):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        chars.append(WORDS[state % len(WORDS)])
    text = "".join(chars)
    return "".join(f"<p>{text[i:i + 120]}</p>" for i in range(0, len(text), 120))


def _html(title: str, body: str, size: int, seed: int) -> bytes:
    head = f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title></head><body>'
    page = head + body
    return (page + f'<div class="text">{_filler(seed, size - len(page.encode()) - 40)}</div></body></html>').encode()


def site_pages(size: int) -> dict[str, bytes]:
    pages: dict[str, bytes] = {"/robots.txt": b"User-agent: *\nAllow: /\n"}
    for n in range(LISTING_PAGES):
        items = "".join(f'<li><a href="/detail/{k}.html">研修班 {k}</a>'
                        f'<span class="date">2026-01-{1 + k % 28:02d}</span></li>'
                        for k in range(n * PER_PAGE, (n + 1) * PER_PAGE))
        nxt = f'<a class="next" href="index_{n + 1}.html">下一页</a>' if n + 1 < LISTING_PAGES else ""
        name = "index.html" if n == 0 else f"index_{n}.html"
        pages[f"/list/{name}"] = _html(f"列表 {n}", f'<ul class="list">{items}</ul>'
                                       f'<div class="pager">共{LISTING_PAGES}页 {nxt}</div>', size, n)
    for k in range(LISTING_PAGES * PER_PAGE):
        body = (f"<h1>2026年研修班 {k}</h1><table><tr><td class=\"org\">主办单位 {k % 7}</td>"
                f"<td class=\"deadline\">2026-02-{1 + k % 28:02d}</td></tr></table>")
        pages[f"/detail/{k}.html"] = _html(f"研修班 {k}", body, size, 1000 + k)
    return pages


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 18   # headers and body leave in one write: no Nagle / delayed-ACK stall per response
    pages: ClassVar[dict[str, tuple[bytes, str]]] = {}
    modified = formatdate(1767225600, usegmt=True)

    def do_GET(self) -> None:
        found = self.pages.get(self.path)
        if found is None:
            self._send(404, b"not found", "")
            return
        body, etag = found
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", etag)
        else:
            self._send(200, body, etag)

    def _send(self, status: int, body: bytes, etag: str) -> None:
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.modified)
        ctype = "text/plain" if self.path.endswith(".txt") else "text/html; charset=utf-8"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)) if status != 304 else "0")
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(size: int) -> tuple[ThreadingHTTPServer, str]:
    pages = {p: (b, '"' + hashlib.sha1(b).hexdigest()[:16] + '"') for p, b in site_pages(size).items()}
    handler = type("BenchHandler", (_Handler,), {"pages": pages})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# -- workers (each in its own process) ----------------------------------------------------------------

def _timed(crawler: Any) -> dict[str, float]:
    from scrapy import signals

    marks: dict[str, float] = {"responses": 0}

    def mark(name: str) -> None:
        if name not in marks:  # "first" fires on every request: read the clocks only once
            marks[name] = time.perf_counter()
            marks[name + "_cpu"] = time.process_time()
            marks[name + "_wait"] = _run_queue_wait()

    def response(**_: Any) -> None:
        marks["responses"] += 1

    crawler.signals.connect(lambda **_: mark("first"), signal=signals.request_reached_downloader, weak=False)
    crawler.signals.connect(response, signal=signals.response_received, weak=False)
    crawler.signals.connect(lambda **_: mark("closed"), signal=signals.spider_closed, weak=False)
    return marks


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


def _result(marks: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {"seconds": marks["closed"] - marks["first"], "cpu": marks["closed_cpu"] - marks["first_cpu"],
            "cpu_wait": marks["closed_wait"] - marks["first_wait"],
            "responses": marks["responses"], "rss_kb": _peak_rss_kb(), **extra}


def listwatch_worker(source_path: Path, data_dir: Path, profile: Path | None) -> dict[str, Any]:
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings
    from scrapy.utils.reactor import install_reactor

    from archive.catalog import open_catalog
    from archive.dedup import DedupIndex
    from archive.indexer import register_warc
    from crawlers import settings as defaults
    from crawlers.report import CrawlReport
    from crawlers.run import CrawlOptions, crawl_settings, freeze_startup_objects, new_run_id, run_paths
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
    install_reactor(defaults.TWISTED_REACTOR)
    process = CrawlerProcess(base)
    crawler = Crawler(ListingSpider, crawl_settings(source, run_id, options))
    crawler.listwatch_dedup = dedup  # type: ignore[attr-defined]
    marks = _timed(crawler)
    process.crawl(crawler, source=source, run_id=run_id)
    freeze_startup_objects()   # as crawlers.run.run_crawls does
    if profile is not None:
        import cProfile

        cProfile.runctx("process.start()", globals(), {"process": process}, str(profile))
    else:
        process.start()
    _, run_dir = run_paths(options, source.id, run_id)
    report = CrawlReport.load(run_dir / "run.json")
    result = _result(marks, pages_ok=report.pages_ok, items=report.items, warc_bytes=report.warc_bytes,
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


def bare_worker(url: str, data_dir: Path, profile: Path | None = None) -> dict[str, Any]:
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

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    # CONCURRENT_ITEMS as listwatch sets it: with Scrapy's default (100 asyncio tasks per response) the bare
    # spider paid 1-1.5 ms more CPU a page (a third of its cost) for an engine setting, not for anything
    # listwatch does differently.
    from crawlers import settings as listwatch_settings

    settings = Settings({"CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
                         "CONCURRENT_ITEMS": listwatch_settings.CONCURRENT_ITEMS, "LOG_LEVEL": "WARNING",
                         "ROBOTSTXT_OBEY": True, "TELNETCONSOLE_ENABLED": False,
                         "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
                         "FEEDS": {str(data_dir / "items.jsonl"): {"format": "jsonlines", "encoding": "utf8"}}})
    process = CrawlerProcess(settings)
    crawler = Crawler(Bare, settings)
    marks = _timed(crawler)
    process.crawl(crawler)
    if profile is not None:
        import cProfile

        cProfile.runctx("process.start()", globals(), {"process": process}, str(profile))
    else:
        process.start()
    return _result(marks)


# -- parent -------------------------------------------------------------------------------------------

def run_worker(args: list[str], timeout: float = 1800) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_crawl", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line.removeprefix(RESULT_MARK))  # type: ignore[no-any-return]
    raise RuntimeError(f"worker printed no result (exit {done.returncode}):\n{done.stdout[-2000:]}\n"
                       f"{done.stderr[-4000:]}")


def wget_bytes(url: str, work: Path) -> tuple[int, float] | None:
    if shutil.which("wget") is None:
        return None
    target = work / "wget"
    target.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["wget", "-q", "-r", "-l", "inf", "-e", "robots=on", "--delete-after",
                    "--warc-file", str(target / "site"), "-P", str(target / "files"), f"{url}/list/index.html"],
                   check=False, timeout=1800)
    seconds = time.perf_counter() - started
    return sum(p.stat().st_size for p in target.glob("site*.warc.gz")), seconds


def _ratio_line(name: str, value: float, target: float, lower_is_better: bool) -> str:
    ok = value <= target if lower_is_better else value >= target
    return f"  RATIO {name:<44} = {value:6.3f}  target {'<=' if lower_is_better else '>='} {target}: " \
           f"{'PASS' if ok else 'FAIL'}"


def bench_weight(size_kb: int, rounds: int, work: Path, profile: Path | None) -> None:
    pages = LISTING_PAGES + LISTING_PAGES * PER_PAGE
    server, url = serve(size_kb * 1024)
    print(f"\n== {pages} pages ({LISTING_PAGES} listing + {LISTING_PAGES * PER_PAGE} detail) at {size_kb} KB, "
          f"concurrency 16 ==", flush=True)
    source = work / f"source-{size_kb}.yaml"
    source.write_text(SOURCE.format(url=url, pages=LISTING_PAGES), encoding="utf-8")
    runs: dict[str, list[dict[str, Any]]] = {"listwatch": [], "bare": []}
    recrawls: list[dict[str, Any]] = []
    last_data: Path | None = None
    try:
        for r in range(rounds):
            order = ["listwatch", "bare"] if r % 2 == 0 else ["bare", "listwatch"]
            for name in order:
                data = Path(tempfile.mkdtemp(prefix=f"lw-bench-{name}-", dir=work))
                if name == "listwatch":
                    res = run_worker(["--worker", "listwatch", str(source), "--data-dir", str(data)])
                    if last_data is not None:
                        shutil.rmtree(last_data, ignore_errors=True)
                    last_data = data
                else:
                    res = run_worker(["--worker", "bare", url, "--data-dir", str(data)])
                    shutil.rmtree(data, ignore_errors=True)
                runs[name].append(res)
                extra = f"  WARC {res['warc_bytes']:,} B  items.jsonl {res['items_bytes']:,} B" \
                    if name == "listwatch" else ""
                check = "" if res["responses"] >= pages else f"  INVALID: only {res['responses']} responses"
                if res.get("problems"):
                    check += f"  problems: {res['problems']}"
                print(f"  round {r + 1} {name:<9} {pages / res['seconds']:7.1f} pages/s  "
                      f"{1000 * res['cpu'] / pages:5.2f} ms CPU/page  waited {res['cpu_wait']:5.1f} s of "
                      f"{res['seconds']:5.1f} s for a CPU  peak RSS {res['rss_kb'] / 1024:6.1f} MB"
                      f"{extra}{check}", flush=True)
                if name == "listwatch":
                    recrawls.append(_recrawl(source, data, res, pages, r))
        assert last_data is not None
        if profile is not None:  # extra crawls under cProfile, not counted in any figure
            run_worker(["--worker", "listwatch", str(source), "--data-dir", str(last_data),
                        "--profile", f"{profile}-recrawl.prof"])
            fresh = Path(tempfile.mkdtemp(prefix="lw-bench-profile-", dir=work))
            run_worker(["--worker", "listwatch", str(source), "--data-dir", str(fresh),
                        "--profile", f"{profile}-first.prof"])
            bare_dir = Path(tempfile.mkdtemp(prefix="lw-bench-profile-bare-", dir=work))
            run_worker(["--worker", "bare", url, "--data-dir", str(bare_dir), "--profile", f"{profile}-bare.prof"])
        first_bytes = statistics.median(r["warc_bytes"] for r in runs["listwatch"])
        wget = wget_bytes(url, work / f"w{size_kb}")
    finally:
        server.shutdown()
        server.server_close()
    lw, bare = runs["listwatch"], runs["bare"]
    rate = statistics.median(b["seconds"] / a["seconds"] for a, b in zip(lw, bare, strict=True))
    cpu = statistics.median(a["cpu"] / b["cpu"] for a, b in zip(lw, bare, strict=True))
    rss = statistics.median(a["rss_kb"] / b["rss_kb"] for a, b in zip(lw, bare, strict=True))
    print(f"  medians: listwatch {pages / statistics.median(r['seconds'] for r in lw):.1f} pages/s, "
          f"bare Scrapy {pages / statistics.median(r['seconds'] for r in bare):.1f} pages/s")
    print(_ratio_line("listwatch / bare Scrapy pages/s", rate, TARGETS["pages/s"], False))
    # On a shared machine most of a crawl's wall time can be spent runnable but waiting for a CPU that other
    # processes hold; that share swings from round to round. Without it, the pages/s ratio shows the crawls.
    unloaded = statistics.median((b["seconds"] - b["cpu_wait"]) / (a["seconds"] - a["cpu_wait"])
                                 for a, b in zip(lw, bare, strict=True))
    print(f"  (same, not counting time spent waiting for a CPU held by other processes: {unloaded:.3f})")
    print(_ratio_line("listwatch / bare Scrapy CPU per page", cpu, TARGETS["cpu/page"], True))
    print(_ratio_line("listwatch / bare Scrapy peak RSS", rss, TARGETS["rss"], True))
    if wget is not None:
        print(f"  wget --warc-file: {wget[0]:,} B in {wget[1]:.1f} s ({pages / wget[1]:.0f} pages/s); "
              f"listwatch first crawl {first_bytes:,.0f} B")
        print(_ratio_line("listwatch / wget WARC bytes", first_bytes / wget[0], TARGETS["wget bytes"], True))
    else:
        print("  wget not installed: WARC bytes vs wget not measured")
    print(f"  unchanged re-crawl (medians): {statistics.median(r['warc_bytes'] for r in recrawls):,.0f} B, floor "
          f"(request + revisit per page) {statistics.median(r['floor'] for r in recrawls):,.0f} B; "
          f"{1000 * statistics.median(r['cpu'] for r in recrawls) / pages:.2f} ms CPU/page")
    print(_ratio_line("re-crawl WARC bytes / floor", statistics.median(r["warc_bytes"] / max(1, r["floor"])
                                                                       for r in recrawls), TARGETS["floor"], True))
    print(_ratio_line("re-crawl CPU / same round's first crawl CPU (median)",
                      statistics.median(r["cpu"] / a["cpu"] for r, a in zip(recrawls, lw, strict=True)),
                      TARGETS["recrawl cpu"], True))


def _recrawl(source: Path, data: Path, first: dict[str, Any], pages: int, r: int) -> dict[str, Any]:
    """An unchanged full re-crawl of a first crawl's data, right after it."""
    res = run_worker(["--worker", "listwatch", str(source), "--data-dir", str(data)])
    problems = f"  problems: {res['problems']}" if res.get("problems") else ""
    print(f"  round {r + 1} re-crawl  {pages / res['seconds']:7.1f} pages/s  "
          f"{1000 * res['cpu'] / pages:5.2f} ms CPU/page ({res['cpu'] / first['cpu']:.3f} of the first)  "
          f"WARC {res['warc_bytes']:,} B, floor {res['floor']:,} B "
          f"({res['warc_bytes'] / max(1, res['floor']):.3f}){problems}", flush=True)
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_crawl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per page weight (default 3)")
    parser.add_argument("--kb", type=int, nargs="+", default=[6, 40], help="page weights in KB (default 6 40)")
    parser.add_argument("--profile", type=Path,
                        help="also profile a first crawl, a re-crawl and the bare spider's crawl (extra, uncounted): "
                             "PATH-KB-first.prof, PATH-KB-recrawl.prof, PATH-KB-bare.prof")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, target = args.worker
        result = listwatch_worker(Path(target), args.data_dir, args.profile) if kind == "listwatch" \
            else bare_worker(target, args.data_dir, args.profile)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    print(f"listwatch crawl benchmark: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; rounds {args.rounds}, order alternating", flush=True)
    work = Path(tempfile.mkdtemp(prefix="lw-bench-crawl-"))
    try:
        for kb in args.kb:
            prof = args.profile.with_name(f"{args.profile.name}-{kb}") if args.profile else None
            bench_weight(kb, args.rounds, work, prof)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
