"""Helpers for the daemon tests: the daemon as a real subprocess, sources with schedules, DB polling."""

from __future__ import annotations

import json
import os
import re
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


def demo_source(name: str, source_id: str | None = None, politeness: str | None = None) -> str:
    """The text of the demo source file ``name`` (``mofcom.yaml``), under the id ``source_id`` if given, with
    ``politeness`` (a YAML flow mapping) in place of its own."""
    text = (DEMO_SOURCES / name).read_text(encoding="utf-8")
    if source_id:
        text = re.sub(r"^id: .*$", f"id: {source_id}", text, count=1, flags=re.MULTILINE)
    if politeness:
        text = text.replace("\npoliteness:", "\n# politeness:") + f"\npoliteness: {politeness}\n"
    return text


def scheduled_source(target: Path, name: str, schedule: str, extra: str = "", politeness: str | None = None) -> Path:
    path = target / name
    target.mkdir(parents=True, exist_ok=True)
    path.write_text(demo_source(name, politeness=politeness) + extra + f"\nschedule: {schedule}\n", encoding="utf-8")
    return path


def env_for(data_dir: Path, sources_dir: Path, site_url: str, **scheduler: Any) -> dict[str, str]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SOURCES_DIR": str(sources_dir),
           "LISTWATCH_SETTINGS": str(data_dir / "none.yaml"), "LISTWATCH_DEMO_URL": site_url,
           "LISTWATCH_LOG_LEVEL": "INFO"}
    env |= {f"LISTWATCH_SCHEDULER__{k.upper()}": str(v) for k, v in scheduler.items()}
    return env


def distributed_env(data_dir: Path, sources_dir: Path, site_url: str, catalog_url: str,
                    **scheduler: Any) -> dict[str, str]:
    """``env_for`` in distributed mode on the PostgreSQL ``catalog_url``: heartbeats and queue polls every
    second, so that tests see a lost worker or a new job soon."""
    return env_for(data_dir, sources_dir, site_url, **scheduler) | {
        "LISTWATCH_CATALOG_URL": catalog_url, "LISTWATCH_DISTRIBUTED__ENABLED": "true",
        "LISTWATCH_DISTRIBUTED__HEARTBEAT": "1", "LISTWATCH_DISTRIBUTED__POLL_INTERVAL": "1"}


def open_warc(spool: Path, run_id: str, min_size: int) -> Path | None:
    """The run's open WARC in ``spool`` once it holds ``min_size`` bytes (records past warcinfo)."""
    for path in spool.rglob(f"*{run_id}*.warc.gz.open"):
        try:
            if path.stat().st_size >= min_size:
                return path
        except OSError:
            continue
    return None


class DaemonProcess:
    """``python -m scheduler ARGS`` (``run`` unless told: the scheduler; ``worker``: a distributed worker) with its
    output in ``log``."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self.handle = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "scheduler", *(args or ("run",))], cwd=ROOT, env=env,
                                     stdout=self.handle, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def says(self, needle: str) -> bool:
        return needle in self.text()

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
