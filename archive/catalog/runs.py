"""Writing a crawl's outcome on its ``crawl_runs`` row: the one place its figures and its end time are set, and
the one reader of the report it keeps (:func:`report_of`).

A run's two times come from one clock: whoever opens the row (``scheduler.pipeline.start_run``) stamps
``started_at`` and whoever closes it stamps ``finished_at`` with the same machine's time, to the microsecond.
The crawl report's own ``started``/``finished`` (the spider's clock, to the second) stay in the report of a run
that did not complete; they set the row's times only for a run no one opened (re-extraction of an old run).
Mixing the two once made a crawl that ended within the second its row was opened "finish" before it started.

A **complete** run keeps a lean report: only what no column holds and what is not a :class:`CrawlReport`
default (an unchanged quick check keeps ``{"pages_ok": {"listing": 1}, "stop_reason": "finished"}``, about 60
bytes instead of about 770). Dropped: ``source_id``, ``run_id``, ``kind``, ``items`` and ``warc_bytes`` (columns,
kept when they differ), ``started``/``finished`` (the row's times), ``warc_files`` (the ``warc_files`` rows of the
run), ``items_path`` (the run directory's ``items.jsonl``), ``complete``/``degraded`` (computed from the rest),
empty lists, zeros, false flags and zero counts by role. Runs that did not complete keep the whole report, for
diagnosis. :func:`report_of` reads both shapes back whole, so rows written before the lean shape need no
migration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.catalog.models import CrawlRun, WarcFile
from archive.catalog.types import as_utc
from crawlers.report import ITEMS_FILE, CrawlReport, Problem, run_dir

ROW_KEYS = ("source_id", "run_id", "kind", "items", "warc_bytes")      # columns: dropped when equal
ELSEWHERE = ("started", "finished", "warc_files", "items_path")        # read back from the row, table, run dir
DERIVED = ("complete", "degraded")
BY_ROLE = ("pages_ok", "pages_failed")
PROBLEM_LISTS = ("problems", "challenges", "warnings")


def finish(run: CrawlRun, at: datetime) -> None:
    """End the run at ``at``, never before it began: the row may have been opened on another machine (a
    scheduler starting a worker's crawl), whose clock can run ahead of this one's."""
    run.finished_at = max(as_utc(at), as_utc(run.started_at))


def record_report(run: CrawlRun, report: Mapping[str, Any], items: int | None = None) -> None:
    """The report's figures on the row: pages read and failed, items (``items``: the count the programme diff
    kept, when known), WARC bytes, and the report itself as JSON (lean when the run's status is complete)."""
    run.pages = sum((report.get("pages_ok") or {}).values())
    run.pages_failed = sum((report.get("pages_failed") or {}).values())
    run.items = int(report.get("items") or 0) if items is None else items
    run.warc_bytes = int(report.get("warc_bytes") or 0)
    whole = json.loads(json.dumps(dict(report), default=str))
    run.report = lean(whole, run) if run.status == "complete" else whole


def lean(report: Mapping[str, Any], run: CrawlRun) -> dict[str, Any]:
    """What :func:`report_of` cannot read back from the row, the run's other tables or the defaults."""
    defaults = _defaults()
    row = _row_values(run)
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key in ELSEWHERE or key in DERIVED:
            continue
        if key in BY_ROLE and isinstance(value, Mapping):
            value = {role: n for role, n in value.items() if n}
            if not value:
                continue
        if value == row.get(key, defaults.get(key, _ABSENT)):
            continue
        out[key] = value
    for key in DERIVED:   # kept only if the report says otherwise than its own fields (it never should)
        if key in report and report[key] != _derived(out, run).get(key):
            out[key] = report[key]
    return out


def report_of(run: CrawlRun, session: Session | None = None, data_dir: Path | None = None) -> dict[str, Any]:
    """The run's report whole, from either shape (lean or whole); ``{}`` while it has none (a running run).

    ``warc_files`` of a lean report are read from the run's ``warc_files`` rows when ``session`` is given, and
    ``items_path`` is the run directory's ``items.jsonl`` when ``data_dir`` is given; otherwise empty."""
    stored = dict(run.report or {})
    if not stored:
        return {}
    whole = {**_defaults(), **_row_values(run), **_elsewhere(run, session, data_dir), **stored}
    for key in BY_ROLE:
        whole[key] = {**_defaults()[key], **(stored.get(key) or {})}
    for key, value in _derived(whole, run).items():
        whole.setdefault(key, value)
    return whole


_ABSENT = object()


def _defaults() -> dict[str, Any]:
    defaults = CrawlReport("", "").to_dict()
    for key in (*ROW_KEYS, *ELSEWHERE, *DERIVED):
        defaults.pop(key, None)
    return defaults


def _row_values(run: CrawlRun) -> dict[str, Any]:
    return {"source_id": run.source_id, "run_id": run.id, "kind": run.kind or "full", "items": run.items or 0,
            "warc_bytes": run.warc_bytes or 0}


def _elsewhere(run: CrawlRun, session: Session | None, data_dir: Path | None) -> dict[str, Any]:
    def moment(at: datetime | None) -> str:
        return as_utc(at).isoformat(timespec="seconds") if at is not None else ""

    names = list(session.scalars(select(WarcFile.name).where(WarcFile.run_id == run.id).order_by(WarcFile.name))
                 ) if session is not None else []
    items = str(run_dir(data_dir, run.source_id, run.id) / ITEMS_FILE) if data_dir is not None else ""
    return {"started": moment(run.started_at), "finished": moment(run.finished_at), "warc_files": names,
            "items_path": items}


def _derived(data: Mapping[str, Any], run: CrawlRun) -> dict[str, Any]:
    """``complete`` and ``degraded`` as :class:`CrawlReport` computes them from the report's fields."""
    names = {f.name for f in fields(CrawlReport)}
    values = {**_defaults(), **_row_values(run), **{k: v for k, v in data.items() if k in names}}
    for key in BY_ROLE:
        values[key] = {**_defaults()[key], **(data.get(key) or {})}
    try:
        for key in PROBLEM_LISTS:
            values[key] = [Problem(**p) for p in values.get(key) or []]
        report = CrawlReport(**{k: v for k, v in values.items() if k in names})
        return {"complete": report.complete, "degraded": report.degraded}
    except (TypeError, KeyError, AttributeError):   # a hand-made report (reprocess's fallback): no opinion
        return {}
