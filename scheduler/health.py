"""Source health across runs: an incident is alerted once when it starts and once when it is over.

The completeness guard (:mod:`archive.programs.diff`) writes a ``source_health`` event for *each* crawl it
finds incomplete: that is the run's own note (history, feed), never alerted. This module is about
*incidents*, so that an operator hears once that a source is in trouble and once that it recovered, whichever
path ran the crawls (the daemon, or a manual ``listwatch crawl``: the pipeline checks after every ingest):

=========  ===========================================================================================
condition  raised when
=========  ===========================================================================================
failing    the last ``failures_alert`` runs all failed (runs interrupted by a stopping scheduler are
           neither failures nor successes; a crawl killed at its time limit is a failure)
blocked    the last ``PERSIST`` runs all met a challenge page (the guard reports the first one)
degraded   the last ``PERSIST`` full crawls that fetched their listing found no item, or fewer than
           ``MIN_RATIO`` × the median of the complete full crawls before them (selectors broke), or were
           all ``degraded`` (detail pages failing, charset conflicts, fields matching nothing: the
           report's ``degraded`` reasons are the detail)
silent     no complete crawl (of either depth) for ``silent_after`` seconds
incomplete the newest run did not see its whole listing (it failed, met a challenge, lost a listing page) or
           could not write its WARC (disk full: what it read is not all archived)
=========  ===========================================================================================

A check writes at most one onset event, whose kind is the most specific condition it raises (``failing``…;
alert subscriptions file them all under ``source_health``) with ``changes = {condition: ["ok", condition]}``
for each condition raised, and at most one ``source_health`` event whose summary starts with ``recovered`` and
``changes = {condition: [condition, "ok"]}`` for each condition cleared. Only the onset that opens an incident
(no condition was active) and the recovery that closes it (none is left) are queued as alerts; conditions that
join or leave an open incident are recorded, not alerted. The current state of each condition is read back
from the newest event that names it, so a restart neither repeats nor forgets one.

>>> check_source(catalog, settings, "demo-mofcom")   # doctest: +SKIP   → ids of the events written (queued)
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from archive.catalog import Catalog
from archive.catalog.models import CrawlRun, Event
from archive.catalog.runs import report_of
from scheduler.settings import Settings

log = logging.getLogger(__name__)
CONDITIONS = ("failing", "blocked", "degraded", "silent", "incomplete")  # most specific first
RECOVERED = "source_health"
PERSIST = 2
MIN_RATIO = 0.5
HISTORY = 60


@dataclass(frozen=True)
class Verdict:
    condition: str
    active: bool
    detail: str
    run_id: str | None = None


def _blocked(run: CrawlRun) -> bool:
    return bool(report_of(run).get("challenges"))


def _listing_ok(run: CrawlRun) -> bool:
    return int((report_of(run).get("pages_ok") or {}).get("listing", 0)) > 0


def _shutdown(run: CrawlRun) -> bool:
    return run.status == "interrupted"


def assess(runs: Sequence[CrawlRun], settings: Settings, now: datetime) -> list[Verdict]:
    """Pure: the four conditions from a source's finished runs, newest first."""
    counted = [r for r in runs if not _shutdown(r)]
    latest = counted[0].id if counted else None
    n = settings.scheduler.failures_alert
    head = counted[:n]
    failing = len(head) == n and all(r.status == "failed" for r in head)
    verdicts = [Verdict("failing", failing, f"the last {n} runs failed: {head[0].reason}" if failing else "", latest)]

    head = counted[:PERSIST]
    blocked = len(head) == PERSIST and all(_blocked(r) for r in head)
    verdicts.append(Verdict("blocked", blocked, f"a challenge page in each of the last {PERSIST} runs: "
                            f"{(report_of(head[0]).get('challenges') or [{}])[0].get('url', '')}" if blocked else "",
                            latest))

    fulls = [r for r in counted if r.kind == "full" and r.status != "failed" and _listing_ok(r)]
    low: list[str] = []
    for i, run in enumerate(fulls[:PERSIST]):
        before = [r.items for r in fulls[i + 1:] if r.status in ("complete", "degraded") and r.items > 0][:5]
        if run.items == 0:
            low.append(f"{run.items} items")
        elif before and run.items < MIN_RATIO * statistics.median(before):
            low.append(f"{run.items} items against a median of {statistics.median(before):g}")
    degraded = len(low) == PERSIST
    detail = f"the last {PERSIST} full crawls found too few items: " + "; ".join(low) if degraded else ""
    doubtful = fulls[:PERSIST]
    if not degraded and len(doubtful) == PERSIST and all(r.status == "degraded" for r in doubtful):
        degraded = True
        detail = f"the last {PERSIST} full crawls were degraded: " + "; ".join(
            report_of(doubtful[0]).get("degraded") or ["see the run report"])
    verdicts.append(Verdict("degraded", degraded, detail, latest))

    complete = [r for r in runs if r.status in ("complete", "degraded") and r.finished_at is not None]
    since = complete[0].finished_at if complete and complete[0].finished_at else (
        runs[-1].started_at if runs else None)
    silent = since is not None and (now - since).total_seconds() > settings.scheduler.silent_after
    what = "no complete crawl since " + since.strftime("%Y-%m-%d %H:%M UTC") if since else ""
    verdicts.append(Verdict("silent", silent, what if silent else "", None))

    newest = counted[0] if counted else None
    incomplete = newest is not None and newest.status in ("failed", "incomplete")  # degraded: a trend, above
    verdicts.append(Verdict("incomplete", incomplete, f"run {newest.id} is {newest.status}: "
                            f"{newest.reason or 'see its report'}" if newest and incomplete else "", latest))
    return verdicts


def current_state(catalog: Catalog, source_id: str) -> dict[str, bool]:
    """Which conditions are open for a source, from the newest onset / recovery event naming each."""
    state = dict.fromkeys(CONDITIONS, False)
    seen: set[str] = set()
    with catalog.read_session() as session:
        events = session.scalars(select(Event).where(
            Event.source_id == source_id, Event.kind.in_([*CONDITIONS, RECOVERED])).order_by(Event.id.desc()))
        for event in events:
            if event.kind == RECOVERED and not event.summary.startswith("recovered"):
                continue  # the completeness guard's per-crawl note
            for condition, change in (event.changes or {}).items():
                if condition in state and condition not in seen:
                    state[condition] = list(change)[-1] != "ok"
                    seen.add(condition)
            if len(seen) == len(CONDITIONS):
                break
    return state


def check_source(catalog: Catalog, settings: Settings, source_id: str, *, now: datetime | None = None,
                 alert: bool = True) -> list[int]:
    """Compare the source's conditions with their recorded state; write the changes (at most one onset and one
    recovery event); queue those that open or close an incident. Returns the ids of the events written."""
    now = now or datetime.now(UTC)
    with catalog.read_session() as session:
        runs = list(session.scalars(select(CrawlRun).where(
            CrawlRun.source_id == source_id, CrawlRun.status != "running", CrawlRun.kind.in_(("quick", "full")))
            .order_by(CrawlRun.started_at.desc()).limit(HISTORY)))
    state = current_state(catalog, source_id)
    verdicts = assess(runs, settings, now)
    raised = [v for v in verdicts if v.active and not state[v.condition]]
    cleared = [v for v in verdicts if not v.active and state[v.condition]]
    ids, alerts = [], []
    with catalog.session() as session:
        if raised:
            event = Event(source_id=source_id, run_id=raised[0].run_id, kind=raised[0].condition, at=now,
                          title=source_id, summary="; ".join(f"{v.condition}: {v.detail}" for v in raised),
                          changes={v.condition: ["ok", v.condition] for v in raised})
            session.add(event)
            session.flush()
            ids.append(event.id)
            if not any(state.values()):
                alerts.append(event.id)  # the incident starts
            log.warning("source health: %s", event.summary, extra={"source": source_id})
        if cleared:
            names = ", ".join(v.condition for v in cleared)
            event = Event(source_id=source_id, run_id=cleared[0].run_id, kind=RECOVERED, at=now, title=source_id,
                          summary=f"recovered: no longer {names}",
                          changes={v.condition: [v.condition, "ok"] for v in cleared})
            session.add(event)
            session.flush()
            ids.append(event.id)
            if not any(v.active for v in verdicts):
                alerts.append(event.id)  # the incident is over
            log.warning("source health: %s", event.summary, extra={"source": source_id})
    if alert and alerts:
        _enqueue(catalog, alerts)
    return ids


def check_sources(catalog: Catalog, settings: Settings, source_ids: Iterable[str]) -> list[int]:
    ids: list[int] = []
    for source_id in source_ids:
        try:
            ids += check_source(catalog, settings, source_id)
        except Exception:  # one source's bookkeeping must not stop the others' checks
            log.exception("health check failed", extra={"source": source_id})
    return ids


def _enqueue(catalog: Catalog, ids: list[int]) -> None:
    from scheduler.alerts import enqueue

    enqueue(catalog, ids)
