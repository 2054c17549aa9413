"""A fresh ``listwatch run`` with default schedules (quick every 15 min, full every 6 h), real processes.

With no source it says so; a source file added while it runs is crawled at the next tick, full crawl first,
not 15 minutes (quick) or 6 hours (full) later. After a restart the source is not "new" any more: no extra crawl.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from daemon_support import DEMO_SOURCES, DaemonProcess, env_for, runs, wait_for

from archive.catalog import open_catalog
from crawlers.demo.site import DemoSite


def test_new_source_is_crawled_at_the_next_tick_full_first(tmp_path: Path) -> None:
    data_dir, sources = tmp_path / "data", tmp_path / "sources"
    sources.mkdir()
    with DemoSite(bench_pages=20) as site:
        env = env_for(data_dir, sources, site.url, maintenance_interval=5)
        daemon = DaemonProcess(env, tmp_path / "daemon-1.log")
        try:
            said = wait_for(lambda: "no sources to schedule" in daemon.log.read_text(encoding="utf-8"), 60,
                            "the daemon to say it has no sources")
            assert said and str(sources.resolve()) in daemon.log.read_text(encoding="utf-8")
            shutil.copy(DEMO_SOURCES / "feed.yaml", sources / "feed.yaml")
            catalog = open_catalog(f"sqlite:///{data_dir.resolve() / 'catalog.sqlite'}")
            # waiting at most 90 s: far below the 900 s quick interval and the 6 h full one
            done = wait_for(lambda: [r for r in runs(catalog, "demo-feed") if r.status != "running"], 90,
                            "the new source's first crawl")
            assert [(r.kind, r.status) for r in done] == [("full", "complete")]
        finally:
            assert daemon.terminate() == 0
        # A restart keeps the stored schedule: the source is not new any more, so nothing runs at start.
        daemon = DaemonProcess(env, tmp_path / "daemon-2.log")
        try:
            wait_for(lambda: "scheduler running: 1 source(s)" in daemon.log.read_text(encoding="utf-8"), 60,
                     "the restarted daemon")
            time.sleep(3)
            assert len(runs(catalog, "demo-feed")) == 1
        finally:
            assert daemon.terminate() == 0
