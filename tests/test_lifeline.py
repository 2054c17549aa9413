"""A crawl of its own process dies with its parent: real ``listwatch worker`` / ``listwatch run``, real Chromium.

A browser source's crawl (one process per crawl, Chromium under it) is caught with its page's data request
stalled by the demo site; then only the parent is SIGKILLed: the worker (distributed mode, real PostgreSQL,
with its scheduler alive) or the single-machine scheduler. Every process that was under it, Chromium included,
must be gone within a bound (not a timing measurement: without :mod:`scheduler.lifeline` they live on for
minutes), and the run must end ``interrupted`` with a reason: closed by the scheduler's lost-worker pass, or
by the restarted scheduler's recovery.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from daemon_support import DEMO_SOURCES, DaemonProcess, distributed_env, env_for, runs, wait_for

from archive.catalog import open_catalog
from crawlers.demo.site import DemoSite
from tests import postgres
from tests.postgres import postgres_url  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]
SOURCE = "demo-lifeline"


def _browser_source(target: Path) -> None:
    text = (DEMO_SOURCES / "academy.yaml").read_text(encoding="utf-8").replace("id: demo-academy", f"id: {SOURCE}")
    text = text.replace("screenshot: true}", "screenshot: true, timeout: 300}")
    target.mkdir(parents=True)
    (target / "lifeline.yaml").write_text(text + "\nschedule: {full: 1h, jitter: 0}\n", encoding="utf-8")


def _stalled_site() -> DemoSite:
    site = DemoSite(bench_pages=5)
    site.stall_seconds = 600           # the page's list request hangs: Chromium stays up, the crawl goes on
    site.set_fault("/academy/api/list", "stall")
    return site


def _under_browser(pid: int) -> list[psutil.Process]:
    """Every process under ``pid`` once a Chromium is among them (else [])."""
    try:
        family = psutil.Process(pid).children(recursive=True)
        return family if any("chrom" in p.name() for p in family) else []
    except psutil.Error:
        return []


def _all_gone(procs: list[psutil.Process]) -> bool:
    def gone(proc: psutil.Process) -> bool:
        try:
            return proc.status() == psutil.STATUS_ZOMBIE     # dead, not yet reaped by its new parent
        except psutil.Error:
            return True
    return all(gone(p) for p in procs)


def _kill_parent_alone(pid: int) -> list[psutil.Process]:
    family = wait_for(lambda: _under_browser(pid), 240, "a browser crawl under the parent")
    os.kill(pid, signal.SIGKILL)
    names = sorted({p.name() for p in family if p.is_running()})
    wait_for(lambda: _all_gone(family), 30, f"the crawl processes to die with their parent ({names})")
    return family


def test_worker_killed_alone_leaves_no_crawl(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    postgres.reset_database(postgres_url)
    _browser_source(tmp_path / "sources")
    with _stalled_site() as site:
        def env(name: str) -> dict[str, str]:
            return distributed_env(tmp_path / name, tmp_path / "sources", site.url, postgres_url) | {
                "LISTWATCH_DISTRIBUTED__STALLED_AFTER": "15"}

        sched = DaemonProcess(env("sched"), tmp_path / "sched.log", "run")
        worker = DaemonProcess(env("w"), tmp_path / "w.log", "worker")
        try:
            _kill_parent_alone(worker.proc.pid)
            worker.proc.wait(10)
            catalog = open_catalog(postgres_url)
            [run] = wait_for(lambda: [r for r in runs(catalog, SOURCE) if r.status == "interrupted"], 120,
                             "the scheduler to close the lost worker's run")
            assert run.reason and run.finished_at is not None, run.reason
            catalog.dispose()
            assert sched.terminate(120) == 0
        finally:
            for proc in (sched, worker):
                if proc.proc.poll() is None:
                    proc.kill()


def test_scheduler_killed_alone_leaves_no_crawl(tmp_path: Path) -> None:
    _browser_source(tmp_path / "sources")
    data = tmp_path / "data"
    with _stalled_site() as site:
        env = env_for(data, tmp_path / "sources", site.url)
        daemon = DaemonProcess(env, tmp_path / "run-1.log")
        try:
            _kill_parent_alone(daemon.proc.pid)
        finally:
            daemon.kill()
        catalog = open_catalog(f"sqlite:///{data / 'catalog.sqlite'}")
        [killed] = runs(catalog, SOURCE)
        assert killed.status == "running"       # nobody closed it yet: the next start's recovery does
        restarted = DaemonProcess(env, tmp_path / "run-2.log")
        try:
            wait_for(lambda: [r for r in runs(catalog, SOURCE) if r.id == killed.id and r.status == "interrupted"],
                     120, "the restarted scheduler to close the killed run")
        finally:
            assert restarted.terminate() == 0
        [closed] = [r for r in runs(catalog, SOURCE) if r.id == killed.id]
        assert "is gone" in closed.reason and closed.finished_at is not None, closed.reason
        catalog.dispose()
