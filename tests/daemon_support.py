"""Helpers for the daemon tests: the daemon as a real subprocess, sources with schedules, DB polling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import CrawlRun

ROOT = Path(__file__).resolve().parent.parent
DEMO_SOURCES = ROOT / "crawlers" / "demo" / "sources"
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def scheduled_source(target: Path, name: str, schedule: str, extra: str = "") -> Path:
    text = (DEMO_SOURCES / name).read_text(encoding="utf-8")
    path = target / name
    target.mkdir(parents=True, exist_ok=True)
    path.write_text(text + extra + f"\nschedule: {schedule}\n", encoding="utf-8")
    return path


def env_for(data_dir: Path, sources_dir: Path, site_url: str, **scheduler: Any) -> dict[str, str]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SOURCES_DIR": str(sources_dir),
           "LISTWATCH_SETTINGS": str(data_dir / "none.yaml"), "LISTWATCH_DEMO_URL": site_url,
           "LISTWATCH_LOG_LEVEL": "INFO"}
    env |= {f"LISTWATCH_SCHEDULER__{k.upper()}": str(v) for k, v in scheduler.items()}
    return env


class DaemonProcess:
    """``python -m scheduler run`` with its log in ``data_dir/daemon-N.log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "scheduler", "run"], cwd=ROOT, env=env,
                                     stdout=self.handle, stderr=subprocess.STDOUT)

    def terminate(self, timeout: float = 90) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.handle.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.handle.close()


def status_json(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "scheduler", "status", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def runs(catalog: Catalog, source_id: str | None = None) -> list[CrawlRun]:
    with catalog.read_session() as session:
        query = select(CrawlRun).order_by(CrawlRun.started_at)
        if source_id:
            query = query.where(CrawlRun.source_id == source_id)
        return list(session.scalars(query))


class OverlapWatch:
    """Samples ``crawl_runs`` in a thread: records any moment with two running rows of one source."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.overlaps: list[list[str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> OverlapWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def _loop(self) -> None:
        while not self.stop.wait(0.2):
            running = [r for r in runs(self.catalog) if r.status == "running"]
            by_source: dict[str, list[str]] = {}
            for run in running:
                by_source.setdefault(run.source_id, []).append(run.id)
            self.overlaps += [ids for ids in by_source.values() if len(ids) > 1]
