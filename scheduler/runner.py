"""One scheduled crawl with a hard time limit and a memory limit: in a crawl host, or in its own process.

Static (non-browser) sources run in long-lived crawl hosts (:mod:`scheduler.hostpool`, :mod:`scheduler.crawlhost`)
when ``crawl_hosts`` > 0 (the default): a crawl subprocess spends 2.5–4 CPU-seconds starting Python, Scrapy and
the catalog, several times what an unchanged quick check costs, so one process per check capped a 2-core machine
near 300 sources per 15 minutes. Browser-rendered sources keep one process per crawl: each starts its own
Chromium anyway (so the interpreter start-up is a small part of its cost), and a process of its own lets a
browser crash, leak or hang be attributed, limited and killed with its process group without touching
anybody else's crawl. ``crawl_hosts: 0`` sends every source through its own process, as before.

In a host, the run is recorded (row ``running``) before it is sent; the host takes the run's lease, crawls,
ingests and reports. The limits are the same as for a process: past ``crawl_timeout`` (or past the stop grace
when the scheduler stops) the host is asked to stop that crawl (Scrapy closes the spider, its WARC closes, what
was captured is ingested, the run ends failed/interrupted with the reason); a crawl that has not ended
``kill_grace`` seconds later gets its host killed. The host pool also kills a host over ``crawl_memory_mb``
resident (its whole tree) or whose event loop stops answering. When a host dies, each run it held ends with a
reason naming the host and what happened, and its ``.open`` WARCs are salvaged. Isolation of a bad source: the
run that made its host be killed (it would not stop) is failed; a run that was in the host at the same time
(a co-tenant: not known to be at fault) is closed ``interrupted`` and **retried once, alone, in its own
process**, where the process limits attribute any failure to the right source. A host lost while running only
one run fails that run, with no retry.

Own process: :class:`CrawlRunner` records the run (``crawl_runs`` row, status running) *before* starting::

    python -m scheduler crawl SOURCE_FILE --run-id ID --kind quick|full --json

(the child's ``pipeline.start_run`` finds that row and does not add another), with its stdout and stderr in
``DATA_DIR/runs/<source>/<run_id>/crawl.log``. The child runs in its own session (process group), so the
Chromium processes it starts are stopped with it; and it dies with its parent (:mod:`scheduler.lifeline`).

Limits
    *Time*: past ``crawl_timeout`` the group gets SIGTERM (Scrapy closes the spider at a safe point: the WARC
    writer closes and renames its file, the pipeline ingests what was captured), then SIGKILL after
    ``kill_grace`` seconds. *Memory*: the resident set of the whole process tree is watched with psutil and
    treated like a timeout past ``crawl_memory_mb``. ``RLIMIT_AS`` is not used: Chromium reserves tens of
    gigabytes of address space up front (V8 pointer-compression cages, PartitionAlloc pools) and fails to start
    under any address-space limit a crawl could sensibly set, while actual use stays far below it.

Whatever happens to the child (crash, hang, kill, out of memory) the run row ends with a status
(``failed``/``interrupted`` when the child did not finish it), a reason in words and the last log lines, and
any ``.open`` WARC it left is salvaged (:mod:`archive.salvage`). Nothing here raises for a child's failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from archive.catalog import Catalog
from archive.catalog.models import CrawlRun
from archive.catalog.runs import finish, report_of
from archive.salvage import Salvaged, open_files, salvage
from crawlers.report import LOG_FILE
from crawlers.report import run_dir as run_directory
from crawlers.run import new_run_id
from crawlers.sources import Source
from scheduler.lifeline import ENV as LIFELINE
from scheduler.pipeline import start_run
from scheduler.settings import Settings

if TYPE_CHECKING:
    from scheduler.hostpool import HostPool, Ticket

log = logging.getLogger(__name__)
POLL = 0.25
TAIL_LINES = 40
FINISHED = ("complete", "degraded", "incomplete", "failed", "interrupted")


@dataclass
class RunResult:
    """How one crawl process ended, as recorded in its ``crawl_runs`` row."""

    source_id: str
    run_id: str
    kind: str
    status: str
    reason: str
    returncode: int | None
    seconds: float
    log_path: Path
    salvaged: list[Salvaged] = field(default_factory=list)
    items: int = 0
    warc_bytes: int = 0
    report: dict[str, object] = field(default_factory=dict)
    retry_alone: bool = False     # a co-tenant of a lost crawl host: to be run again in its own process


def crawl_command(source_path: Path, run_id: str, kind: str) -> list[str]:
    return [sys.executable, "-m", "scheduler", "crawl", str(source_path.resolve()), "--run-id", run_id,
            "--kind", kind, "--json"]


def child_env(settings: Settings) -> dict[str, str]:
    """The daemon's environment plus the settings a child must share with it, as absolute values."""
    return {**os.environ, "LISTWATCH_DATA_DIR": str(settings.data_dir.resolve()),
            "LISTWATCH_CATALOG_URL": settings.catalog, "LISTWATCH_SOURCES_DIR": str(settings.sources_dir.resolve()),
            "LISTWATCH_CLI_LOG_LEVEL": settings.log_level, "PYTHONUNBUFFERED": "1"}


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (read from its end; empty when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 when it is gone)."""
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "crawl process did not exit"
    if returncode < 0:
        return f"crawl process killed by {signal.Signals(-returncode).name}"
    return f"crawl process exited with code {returncode}"


def salvage_run(spool_dir: Path, source_id: str, run_id: str) -> list[Salvaged]:
    """Close (or quarantine) every ``.open`` WARC a finished run left behind."""
    done = []
    for path in open_files(spool_dir / source_id, prefix=f"{source_id}-{run_id}"):
        try:
            result = salvage(path)
        except Exception as exc:   # one unreadable file must not stop the others (or the daemon's start)
            log.error("could not salvage %s: %s: %s", path, type(exc).__name__, exc)
            continue
        log.warning("salvaged %s: %d records kept, %d bytes cut%s", path.name, result.records, result.cut_bytes,
                    f", original kept as {result.quarantined.name}" if result.quarantined else "")
        done.append(result)
    return done


class CrawlRunner:
    """Runs crawls in crawl hosts or subprocesses (see above). ``stopping`` set → each crawl gets until
    ``stop_deadline()`` to finish. Thread-safe: scheduler and worker threads call :meth:`run` at once."""

    def __init__(self, settings: Settings, catalog: Catalog, *, stopping: threading.Event | None = None,
                 stop_deadline: Callable[[], float | None] = lambda: None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.stopping = stopping or threading.Event()
        self.stop_deadline = stop_deadline
        self.pool: HostPool | None = None
        # Each such crawl costs an interpreter and, for a browser source, a Chromium: fewer at once than max_crawls.
        self._process_slots = threading.BoundedSemaphore(settings.scheduler.process_crawls)
        if settings.scheduler.crawl_hosts > 0:
            from scheduler.hostpool import HostPool  # imports this module: import here, not at the top

            self.pool = HostPool(settings)

    def close(self) -> None:
        """Stop the crawl hosts (the scheduler is stopping; their runs have ended or been stopped)."""
        if self.pool is not None:
            self.pool.close()

    def run(self, source: Source, source_path: Path, kind: str, run_id: str | None = None,
            on_retry: Callable[[str], None] | None = None) -> RunResult:
        """Crawl and ingest one source now; returns how the run ended (for a co-tenant of a lost crawl host,
        how its retry alone ended). ``on_retry(new_run_id)`` is called before that retry's row is written (a
        worker lists it as its crawl, so that the retry is judged by the worker's heartbeat like the first)."""
        run_id = run_id or new_run_id()
        if self.pool is None or source.render.mode == "browser":
            return self._run_alone(source, source_path, kind, run_id)
        result = self._run_hosted(source, source_path, kind, run_id)
        if not result.retry_alone or self.stopping.is_set():
            return result
        retry_id = new_run_id()
        if on_retry is not None:
            on_retry(retry_id)
        self._add_reason(run_id, f"retried alone as run {retry_id}")
        log.warning("retrying alone, in its own process, as run %s", retry_id,
                    extra={"run_id": run_id, "source": source.id})
        return self._run_alone(source, source_path, kind, retry_id)

    def _run_alone(self, source: Source, source_path: Path, kind: str, run_id: str) -> RunResult:
        with self._process_slots:
            return self._run_process(source, source_path, kind, run_id)

    def _begin(self, source: Source, kind: str, run_id: str) -> Path:
        start_run(self.catalog, source, run_id, kind)
        run_dir = run_directory(self.settings.data_dir, source.id, run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / LOG_FILE
        with log_path.open("ab") as out:
            out.write(f"listwatch: {kind} crawl of {source.id}, run {run_id}\n".encode())
        return log_path

    def _run_hosted(self, source: Source, source_path: Path, kind: str, run_id: str) -> RunResult:
        assert self.pool is not None
        log_path = self._begin(source, kind, run_id)
        started = time.monotonic()
        try:
            ticket = self.pool.submit(run_id, source.id, str(source_path.resolve()), kind)
        except RuntimeError as exc:   # the pool closed: the scheduler is stopping
            return self._finish(source.id, run_id, kind, None, f"interrupted: {exc}", log_path, started)
        self._set_pid(run_id, ticket.host.pid)
        log.info("crawl sent to crawl host (pid %d)", ticket.host.pid, extra={"run_id": run_id, "source": source.id})
        self._watch_ticket(ticket)
        cause, retry = self._host_cause(ticket)
        result = self._finish(source.id, run_id, kind, None, cause, log_path, started)
        result.retry_alone = retry and result.status in ("failed", "interrupted")
        return result

    def _watch_ticket(self, ticket: Ticket) -> None:
        """Wait for the host's report; ask it to stop the crawl on a limit, kill the host if it does not."""
        assert self.pool is not None
        scheduler = self.settings.scheduler
        deadline = time.monotonic() + scheduler.crawl_timeout
        while not ticket.done.wait(POLL):
            now = time.monotonic()
            cause = self._limit_cause(now, deadline).replace("killed at", "stopped at", 1)
            if cause:
                self.pool.cancel(ticket, cause)
            if ticket.cancel and now >= ticket.cancelled_at + scheduler.kill_grace:
                self.pool.kill_for(ticket, f"did not stop within kill_grace {scheduler.kill_grace} s after: "
                                           f"{ticket.cancel}")
                ticket.done.wait(60)

    def _host_cause(self, ticket: Ticket) -> tuple[str, bool]:
        """(why the run did not end on its own, whether to retry it alone) from how its host answered."""
        if ticket.error:
            return f"crawl host error: {ticket.error}", False
        if not ticket.lost:
            return ticket.cancel, False
        if self._row_status(ticket.run_id) in FINISHED and not ticket.cancel:
            return "", False   # it was ingested and recorded; only the report back was lost
        if ticket.cancel:   # it was asked to stop (and would not, if it is the culprit)
            return f"{ticket.cancel}; {ticket.lost}", False
        if ticket.shared:    # a co-tenant of whatever brought the host down
            return f"interrupted: {ticket.lost}", True
        return ticket.lost, False

    def _run_process(self, source: Source, source_path: Path, kind: str, run_id: str) -> RunResult:
        log_path = self._begin(source, kind, run_id)
        started = time.monotonic()
        cause = ""
        with log_path.open("ab") as out:
            try:
                # stdin: a pipe we never write to; the child dies with us on its EOF (scheduler/lifeline.py)
                proc = subprocess.Popen(crawl_command(source_path, run_id, kind), stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                        env={**child_env(self.settings), LIFELINE: "stdin"}, start_new_session=True)
            except OSError as exc:
                return self._finish(source.id, run_id, kind, None, f"could not start: {exc}", log_path, started)
            try:
                self._set_pid(run_id, proc.pid)
                log.info("crawl started (pid %d)", proc.pid, extra={"run_id": run_id, "source": source.id})
                cause = self._watch(proc)
            finally:
                if proc.stdin is not None:
                    proc.stdin.close()
        signal_group(proc.pid, signal.SIGKILL)   # leftovers of the group (a browser the child did not close)
        return self._finish(source.id, run_id, kind, proc.returncode, cause, log_path, started)

    def _watch(self, proc: subprocess.Popen[bytes]) -> str:
        """Wait for the child; stop it on a limit or a daemon stop. Returns why it was stopped ('' if not)."""
        scheduler = self.settings.scheduler
        deadline = time.monotonic() + scheduler.crawl_timeout
        limit = scheduler.crawl_memory_mb * 1024 * 1024
        next_rss = 0.0
        while proc.poll() is None:
            now = time.monotonic()
            cause = self._limit_cause(now, deadline)
            if not cause and now >= next_rss:
                next_rss = now + 1.0
                rss = tree_rss(proc.pid)
                if rss > limit:
                    cause = (f"killed over the memory limit ({rss // 2**20} MB resident > "
                             f"crawl_memory_mb {scheduler.crawl_memory_mb})")
            if cause:
                self._terminate(proc)
                return cause
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(POLL)
        return ""

    def _limit_cause(self, now: float, deadline: float) -> str:
        """Why a running crawl must stop now: its time limit, or the scheduler stopping past the grace."""
        if now >= deadline:
            return f"killed at the time limit (crawl_timeout {self.settings.scheduler.crawl_timeout} s)"
        if self.stopping.is_set():
            stop_at = self.stop_deadline()
            if stop_at is not None and now >= stop_at:
                return "interrupted: the scheduler was stopping and the crawl outlived the grace period"
        return ""

    def _row_status(self, run_id: str) -> str:
        with self.catalog.read_session() as session:
            run = session.get(CrawlRun, run_id)
            return run.status if run is not None else ""

    def _add_reason(self, run_id: str, words: str) -> None:
        with self.catalog.session() as session:
            run = session.get(CrawlRun, run_id)
            if run is not None:
                run.reason = "; ".join(filter(None, [run.reason, words]))

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(self.settings.scheduler.kill_grace)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    def _set_pid(self, run_id: str, pid: int) -> None:
        with self.catalog.session() as session:
            run = session.get(CrawlRun, run_id)
            if run is not None:
                run.pid = pid

    def _finish(self, source_id: str, run_id: str, kind: str, returncode: int | None, cause: str,
                log_path: Path, started: float) -> RunResult:
        salvaged = salvage_run(self.settings.spool_dir, source_id, run_id)
        with self.catalog.session() as session:
            run = session.get(CrawlRun, run_id)
            assert run is not None, run_id
            if run.status not in FINISHED:   # the child never recorded an outcome
                run.status = "interrupted" if cause.startswith("interrupted") else "failed"
                run.reason = cause or f"{describe_exit(returncode)} before recording an outcome"
                finish(run, datetime.now(UTC))
            elif cause:                      # it wrapped up after our SIGTERM: still a failed run, say why
                run.status = "interrupted" if cause.startswith("interrupted") else "failed"
                run.reason = "; ".join(filter(None, [cause, run.reason]))
            if salvaged:
                run.reason = "; ".join(filter(None, [run.reason, f"{len(salvaged)} open WARC file(s) salvaged"]))
            if run.status != "complete":   # a complete run's log is in its run directory, not worth a row
                run.log_tail = log_tail(log_path)
            result = RunResult(source_id, run_id, kind, run.status, run.reason, returncode,
                               time.monotonic() - started, log_path, salvaged, run.items or 0,
                               run.warc_bytes or 0, report_of(run, session, self.settings.data_dir))
        log.info("crawl %s: %s", result.status, result.reason or "ok", extra={"run_id": run_id, "source": source_id})
        return result
