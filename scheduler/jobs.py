"""The scheduler's persisted check jobs, kept in step with the source files in ``sources_dir``.

One job per source and depth (ids ``quick:<source>`` and ``full:<source>``) in the catalog's job table. A look
at the directory (every few seconds, and on SIGHUP) adds, changes and removes jobs; a file that stops loading
keeps its old jobs (and its sources keep running) until it is fixed or removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawlers.source_checks import interval_seconds
from crawlers.sources import Source, SourceError, load_source
from scheduler.settings import Settings

log = logging.getLogger(__name__)
JOB_TABLE = "listwatch_jobs"
KINDS = ("quick", "full")


def make_trigger(spec: str, jitter: int) -> BaseTrigger:
    """An interval (``20s``, ``15m``, ``6h``) or a five-field cron expression, with jitter (UTC).

    Raises ValueError for a spec the source validator (``crawlers.source_checks.check_schedule``) would refuse.
    """
    seconds = interval_seconds(spec)
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, jitter=min(jitter, seconds // 4) or None, timezone=UTC)
    minute, hour, day, month, dow = spec.split()
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=dow, jitter=jitter or None,
                       timezone=UTC)


def schedules(source: Source, settings: Settings) -> dict[str, str]:
    """kind → schedule spec; a source file without a ``schedule`` section gets the settings' defaults."""
    if "schedule" not in source.model_fields_set:
        return {"quick": f"{settings.scheduler.quick_interval}s", "full": f"{settings.scheduler.full_interval}s"}
    if not source.schedule.enabled:
        return {}
    specs = {"quick": source.schedule.quick, "full": source.schedule.full}
    return {kind: spec for kind, spec in specs.items() if spec}


class SourceJobs:
    """The sources read from ``sources_dir`` and their jobs in ``scheduler``'s default job store.

    ``job`` is the function the jobs call, with ``source_id``, ``kind`` and ``signature`` keyword arguments; it
    is pickled by reference into the job table, so it must stay importable by path.
    """

    def __init__(self, scheduler: BaseScheduler, settings: Settings, job: Callable[..., None]) -> None:
        self.scheduler = scheduler
        self.settings = settings
        self.job = job
        self.sources: dict[str, tuple[Source, Path]] = {}
        self.skipped: dict[str, str] = {}           # source file name → why it is not scheduled
        self.reload_requested = threading.Event()
        self._seen: tuple[tuple[str, int, int], ...] | None = None

    def _dir_state(self) -> tuple[tuple[str, int, int], ...]:
        directory = self.settings.sources_dir
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []
        states = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            states.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(states)

    def watch(self) -> None:
        """Reload when a file changed (name, size or mtime) or a reload was requested (SIGHUP)."""
        if self.reload_requested.is_set() or self._dir_state() != self._seen:
            self.reload_requested.clear()
            self.reload()

    def reload(self) -> None:
        """Read ``sources_dir``; add, change and remove jobs so they match (a broken file keeps its old jobs)."""
        self._seen = self._dir_state()
        found, broken = self._load()
        for name, reason in broken.items():
            if self.skipped.get(name) != reason:   # once per change of the file, not every few seconds
                log.error("source file skipped (its other sources keep running): %s", reason)
        self.skipped = broken
        keep = {job_id for job_id in self._job_ids() for sid, (_, p) in self.sources.items()
                if job_id.endswith(f":{sid}") and p.name in broken}
        self.sources = {**{sid: v for sid, v in self.sources.items() if v[1].name in broken}, **found}
        wanted = set(keep)
        for source_id, (source, path) in found.items():
            wanted |= self._schedule(source_id, source, path)
        for job_id in self._job_ids() - wanted:
            self.scheduler.remove_job(job_id, jobstore="default")
            log.info("unscheduled %s", job_id)

    def _load(self) -> tuple[dict[str, tuple[Source, Path]], dict[str, str]]:
        """The sources that load (source id → source, path) and the files that do not (name → why)."""
        found: dict[str, tuple[Source, Path]] = {}
        broken: dict[str, str] = {}
        for name, _, _ in self._seen or ():
            path = self.settings.sources_dir / name
            try:
                source = load_source(path)
                for spec in schedules(source, self.settings).values():
                    make_trigger(spec, 0)   # what validation let through must also make a trigger
            except (SourceError, ValueError) as exc:
                broken[name] = str(exc)
                continue
            found.setdefault(source.id, (source, path))
        return found, broken

    def _schedule(self, source_id: str, source: Source, path: Path) -> set[str]:
        """Add or replace the jobs of one source whose schedule changed; returns the ids it should have."""
        jitter = source.schedule.jitter if source.schedule.jitter is not None else self.settings.scheduler.jitter
        specs = schedules(source, self.settings)
        first = self._first_kind(source_id, specs)
        wanted = set()
        for kind, spec in specs.items():
            job_id = f"{kind}:{source_id}"
            wanted.add(job_id)
            signature = f"{spec}|{jitter}|{path.resolve()}"
            job = self.scheduler.get_job(job_id, jobstore="default")
            if job is not None and job.kwargs.get("signature") == signature:
                continue    # unchanged: keep its stored next run time (a missed run is caught up)
            # A source the scheduler has never had runs its first crawl (the full one) at the next tick,
            # not one whole interval later; its other schedule starts counting from now.
            when = {"next_run_time": datetime.now(UTC)} if kind == first else {}
            try:
                self.scheduler.add_job(self.job, make_trigger(spec, jitter), id=job_id,
                                       name=f"{kind} check of {source_id}", replace_existing=True,
                                       kwargs={"source_id": source_id, "kind": kind, "signature": signature},
                                       **when)
            except Exception as exc:   # one source must never stop the others from being scheduled
                log.error("%s not scheduled: %s", job_id, exc)
                self.skipped[path.name] = f"{path}: {job_id}: {exc}"
                continue
            log.info("scheduled %s: %s%s", job_id, spec, " (first crawl of a new source: now)" if when else "")
        return wanted

    def _first_kind(self, source_id: str, specs: dict[str, str]) -> str | None:
        """The kind to run now when no job of ``source_id`` is stored (a new source): full if it has one."""
        if not specs or any(self.scheduler.get_job(f"{k}:{source_id}", jobstore="default") for k in KINDS):
            return None
        return "full" if "full" in specs else next(iter(specs))

    def _job_ids(self) -> set[str]:
        return {job.id for job in self.scheduler.get_jobs(jobstore="default")}
