"""Exactly one scheduler per catalog: the lock ``listwatch run`` holds for as long as it lives.

Two schedulers on one catalog would run every job twice (APScheduler 3.x cannot share a job store). So
``listwatch run`` takes, before it touches anything:

- with a PostgreSQL catalog, a session-level **advisory lock** on one dedicated connection. PostgreSQL drops it
  when that connection ends, however the process ends (kill -9, lost machine once TCP gives up). Who holds it is
  read from ``pg_locks`` + ``pg_stat_activity``: the holder names itself in ``application_name``
  (host and pid) and ``backend_start`` says since when;
- otherwise (SQLite, single machine), an exclusive ``flock`` on ``<catalog file>.scheduler.lock`` (the kernel
  drops it when the process ends), reusing :class:`scheduler.lease.RunLease`, which writes host, pid and start
  time into the file for the refusal message.

A second ``listwatch run`` refuses with :class:`SchedulerHeld` naming the holder, or, with ``--standby``, waits
until the lock is free and then starts (a warm spare).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from scheduler.lease import LeaseHeld, RunLease, lease_held

# Advisory lock key: a fixed 64-bit number ("listwatch" scheduler); the same on every machine of one catalog.
ADVISORY_KEY = 0x6C69_7374_7761_7463 >> 1
APP_PREFIX = "listwatch-run"


class SchedulerHeld(RuntimeError):
    """Another live ``listwatch run`` holds this catalog's scheduler lock; the message says who."""


class SchedulerLock(Protocol):
    def try_acquire(self) -> bool: ...
    def holder(self) -> str: ...
    def running(self) -> str | None: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


def _since(epoch: float | dt.datetime) -> str:
    when = epoch if isinstance(epoch, dt.datetime) else dt.datetime.fromtimestamp(epoch, dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class FileLock:
    """Single-machine mode: ``flock`` on a file next to the SQLite catalog (or in the data directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lease = RunLease(path)

    def try_acquire(self) -> bool:
        try:
            self._lease.acquire()
        except LeaseHeld:
            return False
        return True

    def running(self) -> str | None:
        """Who holds the lock (without taking it), or None when no scheduler runs."""
        return self.holder() if lease_held(self.path) else None

    def holder(self) -> str:
        try:
            record: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            return f"host {record['host']}, pid {record['pid']}, since {_since(record['started'])} (lock {self.path})"
        except (OSError, ValueError, KeyError):
            return f"another process (lock file {self.path})"

    def still_held(self) -> bool:
        return self._lease._fd is not None

    def release(self) -> None:
        self._lease.release()


class AdvisoryLock:
    """PostgreSQL mode: ``pg_try_advisory_lock`` on a connection kept open for the scheduler's life."""

    def __init__(self, url: str) -> None:
        me = f"{APP_PREFIX} {socket.gethostname()} pid {os.getpid()}"[:63]   # PostgreSQL keeps 63 bytes
        # NullPool: closing the connection must end the session (and so drop the lock), not pool it.
        self.engine: Engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": me})
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar())
        conn.commit()   # session-level lock: it outlives the transaction, not the connection
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def holder(self) -> str:
        return self.running() or "another process (it has just let go: try again)"

    def running(self) -> str | None:
        """Who holds the lock (read from pg_locks, without taking it), or None when no scheduler runs."""
        query = text("SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
                     "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                     "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k")
        with self.engine.connect() as conn:
            row = conn.execute(query, {"k": ADVISORY_KEY}).first()
        if row is None:
            return None
        name, addr, started = row
        who = name.removeprefix(APP_PREFIX).strip() if name and name.startswith(APP_PREFIX) else (name or "?")
        host, _, pid = who.partition(" pid ")
        return f"host {host or addr}, pid {pid or '?'}, since {_since(started)} (PostgreSQL advisory lock)"

    def still_held(self) -> bool:
        """False when the lock's connection is gone (database restarted, network cut): the lock went with it."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
        except Exception:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()   # ends the session, which drops its advisory locks
            finally:
                self._conn = None
        self.engine.dispose()


def scheduler_lock(catalog_url: str, data_dir: Path) -> SchedulerLock:
    """The lock for this catalog: advisory in PostgreSQL, a lock file beside a SQLite file, else in data_dir."""
    url = make_url(catalog_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(catalog_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return FileLock(Path(url.database).resolve().with_name(Path(url.database).name + ".scheduler.lock"))
    return FileLock(data_dir.resolve() / "scheduler.lock")


def running_scheduler(catalog_url: str, data_dir: Path) -> str | None:
    """For ``listwatch status``: the running scheduler of this catalog (host, pid, since), or None."""
    lock = scheduler_lock(catalog_url, data_dir)
    try:
        return lock.running()
    finally:
        if isinstance(lock, AdvisoryLock):
            lock.engine.dispose()


def hold(lock: SchedulerLock, standby: bool = False, every: float = 5.0,
         on_wait: Callable[[str], None] | None = None, stop: Callable[[], bool] = lambda: False) -> bool:
    """Take ``lock``; raise :class:`SchedulerHeld` naming the holder, or (standby) wait until it is free.

    Returns False only when ``stop()`` became true while standing by.
    """
    told = ""
    while not lock.try_acquire():
        who = lock.holder()
        if not standby:
            raise SchedulerHeld(f"another `listwatch run` already schedules this catalog: {who}")
        if who != told and on_wait is not None:
            on_wait(who)
            told = who
        if stop():
            return False
        time.sleep(every)
    return True
