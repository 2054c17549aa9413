"""The scheduler's side of the crawl hosts (:mod:`scheduler.crawlhost`): start them, send them runs, watch them.

Up to ``crawl_hosts`` host processes, each running up to ``host_crawls`` crawls at once. A run goes to the
least busy live host; a new host is started while every host is busy and there are fewer than
``crawl_hosts`` (two hosts on two cores: the GIL caps one host near one core). A host is replaced after
``host_jobs`` runs (it takes no more, and closes once its last run is reported), which bounds slow leaks.

Watching (a monitor thread, once a second): a host whose process tree is over ``crawl_memory_mb`` resident is
killed; one whose reactor has not beaten for ``max(kill_grace, 10)`` seconds is hung (a hook or extractor
blocking the event loop) and killed; a run cancelled by :class:`scheduler.runner.CrawlRunner` (time limit,
scheduler stopping) that has not ended ``kill_grace`` seconds later gets its host killed. A host that dies,
however, ends each run it held with a reason in words naming the host, the cause and which runs it was running
(:attr:`Ticket.lost`); which of them to blame and retry is the runner's decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from scheduler.runner import child_env, describe_exit, signal_group, tree_rss
from scheduler.settings import Settings

log = logging.getLogger(__name__)
FD_ENV = "LISTWATCH_HOST_FD"
MONITOR = 1.0
MIN_STALL = 10.0


@dataclass
class Ticket:
    """One run sent to a host, as the runner waits on it."""

    run_id: str
    source_id: str
    host: Host
    done: threading.Event = field(default_factory=threading.Event)
    status: str = ""
    error: str = ""                # the host reported an error instead of an outcome
    lost: str = ""                 # the host died before reporting: why, in words
    culprit: bool = False          # the host was killed because of this run
    cancel: str = ""               # why the runner asked the host to stop this run
    cancelled_at: float = 0.0
    shared: bool = False           # other runs were in the host when it was lost

    def describe(self) -> str:
        return f"run {self.run_id} of {self.source_id}"


class Host:
    """One crawl host process and the runs it holds."""

    def __init__(self, settings: Settings, on_end: Callable[[Host], None], on_done: Callable[[], None]) -> None:
        read_end, write_end = os.pipe()
        env = {**child_env(settings), FD_ENV: str(write_end)}
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "scheduler.crawlhost"], stdin=subprocess.PIPE,
                                         env=env, pass_fds=(write_end,), start_new_session=True, text=True)
        finally:
            os.close(write_end)
        self.pid = self.proc.pid
        self.results: IO[str] = os.fdopen(read_end, "r", encoding="utf-8")
        self.tickets: dict[str, Ticket] = {}
        self.sent = 0
        self.draining = False
        self.kill_reason = ""
        self.started = time.monotonic()
        self.last_beat: float | None = None
        self._write = threading.Lock()
        self._on_end = on_end
        self._on_done = on_done
        threading.Thread(target=self._read, name=f"crawl-host-{self.pid}", daemon=True).start()
        log.info("crawl host started (pid %d)", self.pid)

    def send(self, **message: object) -> bool:
        try:
            with self._write:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(message) + "\n")
                self.proc.stdin.flush()
            return True
        except (OSError, ValueError):   # the host is gone: its reader thread ends its runs
            return False

    def close_input(self) -> None:
        with self._write, contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()

    def kill(self, reason: str) -> None:
        if not self.kill_reason:
            self.kill_reason = reason
            log.warning("killing crawl host (pid %d): %s", self.pid, reason)
        signal_group(self.pid, signal.SIGKILL)

    def holding(self) -> str:
        return ", ".join(t.describe() for t in self.tickets.values()) or "no run"

    def _read(self) -> None:
        for line in self.results:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "beat" in message or "ready" in message:
                self.last_beat = time.monotonic()
            elif "done" in message:
                ticket = self.tickets.pop(message["done"], None)
                if ticket is not None:
                    ticket.status = message.get("status", "")
                    ticket.error = message.get("error", "")
                    ticket.done.set()
                self._on_done()
        self.proc.wait()
        self._on_end(self)

    def end_reason(self) -> str:
        base = self.kill_reason or describe_exit(self.proc.returncode).replace("crawl process", "crawl host", 1)
        return f"crawl host (pid {self.pid}) {base.removeprefix('crawl host ')}"


class HostPool:
    """Crawl hosts for :class:`scheduler.runner.CrawlRunner`; thread-safe, started lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hosts: list[Host] = []
        self.closed = False
        self._cond = threading.Condition()
        self._monitor: threading.Thread | None = None

    def submit(self, run_id: str, source_id: str, source_path: str, kind: str) -> Ticket:
        with self._cond:
            host = self._pick()
            ticket = Ticket(run_id, source_id, host)
            host.tickets[run_id] = ticket
            host.sent += 1
            host.draining |= host.sent >= self.settings.scheduler.host_jobs
        if not host.send(run=run_id, source=source_path, kind=kind):
            self._lose(host, ticket)
        return ticket

    def _pick(self) -> Host:
        """The least busy host with room (a new one while all are busy and the pool may grow); waits if full."""
        limits = self.settings.scheduler
        while True:
            if self.closed:
                raise RuntimeError("the crawl host pool is closed (the scheduler is stopping)")
            live = [h for h in self.hosts if not h.draining and not h.kill_reason]   # retiring ones do not count
            best = min((h for h in live if len(h.tickets) < limits.host_crawls), key=lambda h: len(h.tickets),
                       default=None)
            if len(live) < limits.crawl_hosts and (best is None or best.tickets):
                best = Host(self.settings, self._ended, self._room)
                self.hosts.append(best)
                self._start_monitor()
            if best is not None:
                return best
            self._cond.wait(0.5)

    def cancel(self, ticket: Ticket, reason: str) -> None:
        if ticket.cancel:
            return
        ticket.cancel, ticket.cancelled_at = reason, time.monotonic()
        ticket.host.send(cancel=ticket.run_id, reason=reason)

    def kill_for(self, ticket: Ticket, reason: str) -> None:
        """Kill the host of a run that does not stop: that run is the culprit, the others co-tenants."""
        ticket.culprit = True
        ticket.host.kill(f"killed because {ticket.describe()} {reason} (it was running {ticket.host.holding()})")

    def _lose(self, host: Host, ticket: Ticket) -> None:
        ticket.lost = host.end_reason() if host.proc.poll() is not None else f"crawl host (pid {host.pid}) is gone"
        with self._cond:
            host.tickets.pop(ticket.run_id, None)
        ticket.done.set()

    def _room(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _ended(self, host: Host) -> None:
        """Reader thread of a host at its end: every run it still held ends with the reason."""
        with self._cond:
            if host in self.hosts:
                self.hosts.remove(host)
            orphans = list(host.tickets.values())
            host.tickets.clear()
            self._cond.notify_all()
        reason = host.end_reason()
        if orphans:
            log.warning("%s; its run(s) end: %s", reason, ", ".join(t.describe() for t in orphans))
        for ticket in orphans:
            ticket.lost, ticket.shared = reason, len(orphans) > 1
            ticket.done.set()

    # -- watching ------------------------------------------------------------------------------------

    def _start_monitor(self) -> None:
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name="crawl-host-monitor", daemon=True)
            self._monitor.start()

    def _watch(self) -> None:
        while not self.closed:
            time.sleep(MONITOR)
            with self._cond:
                hosts = list(self.hosts)
            for host in hosts:
                try:
                    self._check(host)
                except Exception:   # the monitor must outlive one bad look at a process
                    log.exception("crawl host check failed (pid %d)", host.pid)

    def _check(self, host: Host) -> None:
        limits = self.settings.scheduler
        now = time.monotonic()
        if host.draining and not host.tickets:
            host.close_input()   # retired after host_jobs runs: it exits at end of input
            return
        rss = tree_rss(host.pid)
        if rss > limits.crawl_memory_mb * 2**20:
            host.kill(f"killed over the memory limit ({rss // 2**20} MB resident > crawl_memory_mb "
                      f"{limits.crawl_memory_mb}) while running {host.holding()}")
            return
        stall = max(float(limits.kill_grace), MIN_STALL)
        if host.last_beat is not None and host.tickets and now - host.last_beat > stall:
            host.kill(f"killed: its event loop did not answer for {now - host.last_beat:.0f} s (a crawl blocked "
                      f"it) while running {host.holding()}")

    def close(self, wait: float = 5.0) -> None:
        """End every host: close its input (it exits), then kill what is left after ``wait`` seconds."""
        with self._cond:
            self.closed = True
            hosts = list(self.hosts)
            self._cond.notify_all()
        for host in hosts:
            host.close_input()
        deadline = time.monotonic() + wait
        for host in hosts:
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.proc.wait(max(0.1, deadline - time.monotonic()))
            if host.proc.poll() is None:
                host.kill("killed: the scheduler stopped and the host did not exit")
