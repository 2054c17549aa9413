"""Log records of a crawl host, each run's to its own ``crawl.log``.

Several crawls share one crawl host process (:mod:`scheduler.crawlhost`), but an operator reads one run's log
at a time (``crawl_runs.log_tail``, ``DATA_DIR/runs/<source>/<run>/crawl.log``). A record belongs to a run when
it names a spider (Scrapy's own records carry ``extra={"spider": …}``) or carries the run's log context
(:func:`scheduler.logs.context`, a contextvar the run's asyncio tasks and worker threads inherit). Anything else
(the host's own start-up, a library warning outside any crawl) goes to stderr, the scheduler's log.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import IO

from scheduler import logs


def run_of(record: logging.LogRecord) -> str | None:
    spider = getattr(record, "spider", None)
    report = getattr(spider, "report", None)
    run_id = getattr(report, "run_id", None) or getattr(record, "run_id", None)
    return run_id if isinstance(run_id, str) else None


class RunLogRouter(logging.Handler):
    """Writes each record to its run's open log file, or to stderr."""

    def __init__(self, level: str) -> None:
        super().__init__()
        self.files: dict[str, IO[str]] = {}
        self._files_lock = threading.Lock()
        self.setFormatter(logs.TextFormatter())
        self.addFilter(logs.ContextFilter())
        self.addFilter(logs.ChatterFilter(logging.getLevelName(level.upper())))

    @classmethod
    def install(cls, level: str) -> RunLogRouter:
        router = cls(level)
        root = logging.getLogger()
        root.handlers[:] = [router]
        root.setLevel(level.upper())
        return router

    def begin(self, run_id: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._files_lock:
            self.files[run_id] = path.open("a", encoding="utf-8")

    def end(self, run_id: str) -> None:
        with self._files_lock:
            handle = self.files.pop(run_id, None)
        if handle is not None:
            handle.close()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            run_id = run_of(record)
            with self._files_lock:
                target = self.files.get(run_id) if run_id else None
                (target or sys.stderr).write(text)
                (target or sys.stderr).flush()
        except Exception:
            self.handleError(record)
