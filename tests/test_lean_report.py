"""A complete run keeps a lean report (archive/catalog/runs.py) and no log tail; every reader gets the whole
report back, from rows of either shape.

Real parts: the demo site on loopback, checks through :class:`scheduler.runner.CrawlRunner` (a crawl host),
SQLite and PostgreSQL catalogs. The crawl's own ``run.json`` (its run directory) is the truth the catalog's
report must read back as.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.catalog.models import CrawlRun
from archive.catalog.runs import report_of
from archive.programs.reprocess import _report
from crawlers.report import run_dir
from scheduler.health import assess
from tests import postgres
from tests.retention_support import Checks, checks_fixture  # noqa: F401 (the checks fixture)

postgres_url = postgres.postgres_url      # the session fixture (a throwaway cluster)
CLOCKS = ("started", "finished")          # the spider's clock: a lean report reads the row's times instead


def _on_disk(checks: Checks, run: CrawlRun) -> dict[str, Any]:
    path = run_dir(checks.settings.data_dir, run.source_id, run.id) / "run.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _without(report: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in keys}


def test_a_complete_check_stores_a_lean_report_that_reads_back_whole(checks: Checks) -> None:
    path = checks.source("lean-0")
    first = checks.check(path, "full")
    quick = checks.check(path, "quick")
    assert (first.status, quick.status) == ("complete", "complete"), (first.reason, quick.reason)
    for result in (first, quick):
        row = checks.row(result.run_id)
        truth = _on_disk(checks, row)
        assert truth["warc_files"], "the check wrote no WARC: nothing to read back"
        assert not {"run_id", "source_id", "warc_files", "items_path", "started", "complete"} & set(row.report)
        assert len(json.dumps(row.report)) < 0.25 * len(json.dumps(truth)), row.report
        assert row.log_tail == ""
        with checks.catalog.read_session() as session:
            whole = report_of(session.get(CrawlRun, row.id), session, checks.settings.data_dir)  # type: ignore[arg-type]
        assert _without(whole, *CLOCKS, "warc_files") == _without(truth, *CLOCKS, "warc_files")
        assert whole["warc_files"] == [Path(p).name for p in truth["warc_files"]]
        assert whole["finished"] == row.finished_at.astimezone(UTC).isoformat(timespec="seconds")  # type: ignore[union-attr]
        assert result.report == whole, "the runner's result reads the report whole"
    # reprocess reads what the crawl reported (without a session: the WARC list is its own)
    row = checks.row(quick.run_id)
    read = _report(None, row, checks.settings.data_dir, "lean-0", [])  # type: ignore[arg-type]
    assert _without(read, *CLOCKS, "warc_files") == _without(_on_disk(checks, row), *CLOCKS, "warc_files")


def test_rows_written_whole_before_the_lean_shape_read_back_unchanged(checks: Checks) -> None:
    path = checks.source("old-0")
    quick = checks.check(checks.source("old-0"), "full")
    truth = _on_disk(checks, checks.row(quick.run_id))
    with checks.catalog.session() as session:   # as every complete run was stored until now
        row = session.get(CrawlRun, quick.run_id)
        assert row is not None
        row.report = truth
    assert report_of(checks.row(quick.run_id)) == truth
    assert checks.check(path, "quick").status == "complete"
    runs = list(reversed(checks.runs()))          # newest first, one lean row and one whole row
    assert {"run_id" in r.report for r in runs} == {True, False}
    verdicts = {v.condition: v.active for v in assess(runs, checks.settings, datetime.now(UTC))}
    assert not any(verdicts.values()), verdicts


def test_a_run_that_did_not_complete_keeps_its_whole_report_and_log_tail(checks: Checks) -> None:
    result = checks.check(checks.source("gone-0", page="no-such-page.html"), "quick")
    assert result.status == "failed", result.reason
    row = checks.row(result.run_id)
    assert row.report["run_id"] == row.id and row.report["pages_failed"]["listing"] == 1, row.report
    assert row.log_tail, "a failed run keeps the end of its log"
    assert report_of(row) == row.report
