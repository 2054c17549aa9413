"""Writing a crawl's outcome on its ``crawl_runs`` row: the one place its figures and its end time are set.

A run's two times come from one clock: whoever opens the row (``scheduler.pipeline.start_run``) stamps
``started_at`` and whoever closes it stamps ``finished_at`` with the same machine's time, to the microsecond.
The crawl report's own ``started``/``finished`` (the spider's clock, to the second) stay in ``report``; they
set the row's times only for a run no one opened (re-extraction of an old run). Mixing the two once made a
crawl that ended within the second its row was opened "finish" before it started.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from archive.catalog.models import CrawlRun
from archive.catalog.types import as_utc


def finish(run: CrawlRun, at: datetime) -> None:
    """End the run at ``at``, never before it began: the row may have been opened on another machine (a
    scheduler starting a worker's crawl), whose clock can run ahead of this one's."""
    run.finished_at = max(as_utc(at), as_utc(run.started_at))


def record_report(run: CrawlRun, report: Mapping[str, Any], items: int | None = None) -> None:
    """The report's figures on the row: pages read and failed, items (``items``: the count the programme diff
    kept, when known), WARC bytes, and the report itself as JSON."""
    run.pages = sum((report.get("pages_ok") or {}).values())
    run.pages_failed = sum((report.get("pages_failed") or {}).values())
    run.items = int(report.get("items") or 0) if items is None else items
    run.warc_bytes = int(report.get("warc_bytes") or 0)
    run.report = json.loads(json.dumps(dict(report), default=str))
