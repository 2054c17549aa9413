"""A crawl whose spider close never runs still ends with its WARC closed and no writer thread left behind.

The capture's writer thread and its ``.open`` file are normally closed by the spider's close
(``spider_closed``). Whatever ends a crawl without it, the process that ran the crawl closes the capture
itself (``crawlers.capture.close_capture``, called by ``crawlers.run.run_crawls`` and by each crawl host job),
so the queued records are written and the file is closed instead of waiting for salvage, and a long-lived
crawl host keeps no idle thread. Real parts: the demo site on loopback, a real crawl in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from archive_tools import warcio_check
from warcio.archiveiterator import ArchiveIterator

from crawlers.demo.site import DemoSite

ROOT = Path(__file__).resolve().parent.parent
SOURCE = """id: close-test
name: a crawl whose close never runs
start_urls: ["${LISTWATCH_DEMO_URL}/mofcom/list/index.html"]
items: {selector: "ul.list > li", key: url, fields: {url: {css: "a::attr(href)", type: url}}}
politeness: {delay: 0, concurrency: 1, obey_robots: false}
"""
CRAWL = """
import json, sys, threading
from pathlib import Path
from scrapy import signals
from crawlers.capture import WarcCapture
from crawlers.run import CrawlJob, CrawlOptions, run_crawls
from crawlers.sources import load_source

HELD = []   # signal receivers are held weakly

def close_never_runs(crawler, source_id):
    def opened(spider):   # what a crawl ending without its close looks like: no spider_closed receiver runs
        crawler.signals.disconnect(spider._closed, signal=signals.spider_closed)
        crawler.signals.disconnect(crawler.get_extension(WarcCapture).spider_closed, signal=signals.spider_closed)
        print("spider_closed receivers disconnected", file=sys.stderr)
    HELD.append(opened)
    crawler.signals.connect(opened, signal=signals.spider_opened)

source = load_source(Path(sys.argv[1]))
run_crawls([CrawlJob(source, "run-1")], CrawlOptions(data_dir=Path(sys.argv[2])), watch=close_never_runs)
print(json.dumps([t.name for t in threading.enumerate() if t.name.startswith(sys.argv[3])]))
"""


def test_a_crawl_whose_close_never_ran_still_closes_its_warc(tmp_path: Path) -> None:
    source = tmp_path / "close-test.yaml"
    source.write_text(SOURCE, encoding="utf-8")
    data = tmp_path / "data"
    with DemoSite() as site:
        env = {**os.environ, "LISTWATCH_DEMO_URL": site.url}
        done = subprocess.run([sys.executable, "-c", CRAWL, str(source), str(data), "warc-writer"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "spider_closed receivers disconnected" in done.stderr, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [], "a WARC writer thread outlived its crawl"
    spool = data / "spool" / "close-test"
    assert not list(spool.glob("*.open")), "the crawl's WARC was left open"
    closed = sorted(spool.glob("*.warc.gz"))
    warcio_check(closed)
    with closed[-1].open("rb") as handle:
        uris = [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(handle)]
    assert any(u and u.endswith("/mofcom/list/index.html") for u in uris), uris
