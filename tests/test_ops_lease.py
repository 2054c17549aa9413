"""Hardening, issue 8 failure 1: crawl ownership by lease, not by command line.

A real manual ``listwatch crawl`` (no run id on its command line) is in progress, writing its ``.open`` WARC,
while recovery runs in this process and a real ``listwatch run`` starts and runs maintenance passes on the same
data directory. Nothing touches the crawl: its row stays ``running``, its ``.open`` file stays put, and when
stopped (SIGTERM) it winds up itself with a closed, valid WARC. Then a second manual crawl is killed with
SIGKILL: its lease goes with it, and recovery closes the run and salvages its file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from archive_tools import warcio_check
from conftest import DEMO_SOURCES, ROOT
from daemon_support import DaemonProcess, env_for, wait_for
from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import CrawlRun
from archive.salvage import open_files
from crawlers.demo.site import DemoSite
from scheduler.lease import LeaseHeld, RunLease, lease_held, lease_path
from scheduler.recovery import recover, source_busy
from scheduler.settings import Settings


def _slow_source(tmp_path: Path, seconds: int) -> Path:
    text = (DEMO_SOURCES / "mofcom.yaml").read_text(encoding="utf-8")
    path = tmp_path / "slow.yaml"
    path.write_text(text + "\npoliteness: {delay: 0.5, concurrency: 1, obey_robots: false}\n"
                    f"limits: {{max_seconds: {seconds}}}\n", encoding="utf-8")
    return path


def _manual_crawl(tmp_path: Path, site: DemoSite, data_dir: Path, seconds: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_DEMO_URL": site.url,
           "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml")}
    log = (tmp_path / f"manual-{seconds}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "scheduler", "crawl", str(_slow_source(tmp_path, seconds))],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _running(catalog: Catalog) -> list[CrawlRun]:
    with catalog.read_session() as session:
        return list(session.scalars(select(CrawlRun).where(CrawlRun.status == "running")))


def _writing(catalog: Catalog, settings: Settings) -> tuple[CrawlRun, list[Path]]:
    """The manual crawl's running row and its open WARC files, once it has both."""
    catalog_file = settings.data_dir / "catalog.sqlite"
    [run] = wait_for(lambda: _running(catalog) if catalog_file.exists() else [], 60, "the manual crawl's run row")
    return run, wait_for(lambda: open_files(settings.spool_dir), 60, "the manual crawl's open WARC")


def _run(catalog: Catalog, run_id: str) -> CrawlRun:
    with catalog.read_session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        return run


def test_lease_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = lease_path(tmp_path, "demo", "r1")
    assert lease_held(path) is None
    with RunLease(path):
        assert lease_held(path) is True
        try:
            RunLease(path).acquire()
            raise AssertionError("a second holder got the lease")
        except LeaseHeld:
            pass
    assert lease_held(path) is False


def test_recovery_and_a_starting_daemon_leave_a_manual_crawl_alone(tmp_path: Path, demo_site: DemoSite) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    crawl = _manual_crawl(tmp_path, demo_site, data_dir, seconds=300)
    catalog = open_catalog(settings.catalog)
    try:
        run, opened = _writing(catalog, settings)
        assert str(run.id) not in " ".join(map(str, crawl.args))   # no run id on its command line
        assert recover(catalog, settings) == []
        assert source_busy(catalog, settings, run.source_id) == run.id
        env = env_for(data_dir, tmp_path / "sources", demo_site.url, maintenance_interval=1)
        daemon = DaemonProcess(env, tmp_path / "daemon.log")
        wait_for(lambda: "scheduler running" in daemon.log.read_text(errors="replace"), 60, "the daemon")
        time.sleep(3.5)   # start-up recovery, then maintenance passes every second
        assert daemon.terminate() == 0
        assert crawl.poll() is None, "the manual crawl ended before the daemon had a go at it"
        assert _run(catalog, run.id).status == "running"
        assert all(p.exists() for p in opened)
        crawl.send_signal(signal.SIGTERM)   # the crawl winds up on its own: closes its WARC, records its run
        assert crawl.wait(120) in (0, 1)
    finally:
        if crawl.poll() is None:
            crawl.kill()
    done = _run(catalog, run.id)
    assert done.status in ("complete", "incomplete"), (done.status, done.reason)
    assert "salvaged" not in (done.reason or "")
    assert not open_files(settings.spool_dir)
    warcs = sorted(p for p in data_dir.rglob(f"*{run.id}*.warc.gz") if p.is_file())
    assert warcs
    warcio_check(warcs)


def test_a_killed_manual_crawl_is_recovered(tmp_path: Path, demo_site: DemoSite) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    crawl = _manual_crawl(tmp_path, demo_site, data_dir, seconds=300)
    catalog = open_catalog(settings.catalog)
    try:
        run, _ = _writing(catalog, settings)
        assert recover(catalog, settings) == []
    finally:
        crawl.send_signal(signal.SIGKILL)
        crawl.wait(30)
    assert lease_held(lease_path(data_dir, run.source_id, run.id)) is False
    assert recover(catalog, settings) == [run.id]
    closed = _run(catalog, run.id)
    assert closed.status == "interrupted" and "salvaged" in (closed.reason or "")
    assert not open_files(settings.spool_dir)
