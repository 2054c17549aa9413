"""Retention of old unchanged checks (archive/retention.py): what is pruned, what never is, and that nothing is
lost — audits know the pruned WARCs, reindex brings their rows back.

Real parts: the demo site on loopback, real checks through :class:`scheduler.runner.CrawlRunner` (a crawl host)
into SQLite and PostgreSQL catalogs and the local store, real audits and reindex of that store. The checks are
made "old" by moving their run rows' times back 40 days (the one thing staged); the rows that point at a check
(an event's evidence, a programme's last record) are written as the programme diff writes them.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from daemon_support import DaemonProcess, env_for, status_json, wait_for
from sqlalchemy import func, select

from archive.catalog.models import Capture, CheckDay, CrawlRun, Event, Program, WarcFile
from archive.catalog.types import as_utc
from archive.cdx import query_captures
from archive.fixity import verify
from archive.reindex import reindex_report
from archive.retention import prune_unchanged
from archive.storage import open_storage
from crawlers.demo.site import DemoSite
from scheduler.status import gather
from tests import postgres
from tests.conftest import run_listwatch
from tests.retention_support import Checks, checks_fixture  # noqa: F401 (the checks fixture)

postgres_url = postgres.postgres_url      # the session fixture (a throwaway cluster)
QUICK = 6                                  # q0 … q5: q0 and q5 are the day's first and last


def _old_checks(checks: Checks) -> tuple[str, list[str]]:
    """A full crawl and QUICK unchanged quick checks of one source, all moved 40 days back."""
    path = checks.source("keep-0")
    full = checks.check(path, "full")
    quick = [checks.check(path, "quick") for _ in range(QUICK)]
    assert {r.status for r in [full, *quick]} == {"complete"}, [(r.status, r.reason) for r in [full, *quick]]
    with checks.catalog.session() as session:   # to noon 40 days ago: one day, even if the test ran over midnight
        runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.started_at)))
        noon = datetime.combine(datetime.now(UTC).date() - timedelta(days=40), time(12), UTC)
        shift = noon - as_utc(runs[0].started_at)
        for run in runs:
            run.started_at = as_utc(run.started_at) + shift
            run.finished_at = as_utc(run.finished_at) + shift if run.finished_at else None
    return full.run_id, [r.run_id for r in quick]


def _record_of(checks: Checks, run_id: str) -> str:
    with checks.catalog.read_session() as session:
        [(record, kind)] = session.execute(select(Capture.record_id, Capture.record_type)
                                           .where(Capture.run_id == run_id)).all()
    assert kind == "revisit", kind   # an unchanged check archived nothing new
    return str(record)


def _rows(checks: Checks, table: type, column: str, run_ids: list[str]) -> int:
    with checks.catalog.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(
            getattr(table, column).in_(run_ids))) or 0)


def test_old_unchanged_checks_are_pruned_and_nothing_they_prove_is_lost(checks: Checks) -> None:
    full, quick = _old_checks(checks)
    evidence, proof = _record_of(checks, quick[2]), _record_of(checks, quick[3])
    with checks.catalog.session() as session:   # an alert's evidence (a later run's event) and a programme's record
        session.add(Event(source_id="keep-0", run_id=full, kind="changed", at=checks.runs()[0].started_at,
                          after_record_id=evidence))
        program = session.scalars(select(Program).where(Program.source_id == "keep-0").limit(1)).one()
        program.last_record_id = proof
    pruned = [quick[1], quick[4]]
    kept = [full, quick[0], quick[2], quick[3], quick[5]]
    with checks.catalog.read_session() as session:
        warcs = session.scalars(select(WarcFile).where(WarcFile.run_id.in_(pruned)))
        before = {w.key: (w.size, w.sha256) for w in warcs}
        records = set(session.scalars(select(Capture.record_id).where(Capture.run_id.in_(pruned))))
    assert len(before) == 2 and len(records) == 2

    halted = prune_unchanged(checks.catalog, older_than_days=30, stop=lambda: True)   # the scheduler stopping
    assert halted.stopped and halted.checks == 0 and _rows(checks, CrawlRun, "id", pruned) == 2
    dry = prune_unchanged(checks.catalog, older_than_days=30, dry_run=True)
    assert (dry.checks, dry.captures, dry.warc_files) == (2, 2, 2)
    assert _rows(checks, CrawlRun, "id", pruned) == 2, "a dry run deleted rows"

    done = prune_unchanged(checks.catalog, older_than_days=30)
    assert (done.checks, done.captures, done.warc_files) == (2, 2, 2)
    assert _rows(checks, CrawlRun, "id", pruned) == 0 and _rows(checks, Capture, "run_id", pruned) == 0
    assert _rows(checks, WarcFile, "run_id", pruned) == 0
    assert _rows(checks, CrawlRun, "id", kept) == len(kept) and _rows(checks, Capture, "run_id", kept) >= len(kept)
    with checks.catalog.read_session() as session:
        [day] = session.scalars(select(CheckDay))
        assert (day.source_id, day.kind, day.checks) == ("keep-0", "quick", 2)
        assert {k: (n, h) for k, n, h in day.warcs} == before
        assert session.scalar(select(Capture.id).where(Capture.record_id == evidence)) is not None
    assert prune_unchanged(checks.catalog, older_than_days=30).checks == 0, "a second pass found more"
    assert gather(checks.settings, checks.catalog)["sources"]["keep-0"]["runs"]["pruned"] == 2

    # the day's first and last look stay in the capture calendar
    url = f"{checks.site.url}/bench/list/index.html"
    times = [e.record_id for e in query_captures(checks.catalog, url, record_types=("response", "revisit"))]
    assert {_record_of(checks, quick[0]), _record_of(checks, quick[5])} <= set(times)

    storage = open_storage(checks.settings)
    audit = verify(checks.catalog, storage)
    assert audit.ok and audit.orphans == [], (audit.problems, audit.orphans)
    assert set(before) <= set(audit.verified), "the pruned WARCs were not re-hashed"
    damaged = Path(checks.settings.store_path, next(iter(before)))
    intact = damaged.read_bytes()
    damaged.write_bytes(intact[:-1] + bytes([intact[-1] ^ 1]))   # one bit of a pruned WARC flips in the store
    sampled = verify(checks.catalog, storage, sample=100)         # a sample draws from the pruned WARCs too
    assert [(p.key, p.state) for p in sampled.problems] == [(str(damaged.relative_to(checks.settings.store_path)),
                                                             "corrupt")], sampled.problems
    damaged.write_bytes(intact)
    planted = _plant_unknown_warc(checks, next(iter(before)))
    assert verify(checks.catalog, storage).orphans == [planted], "only the unknown object is an orphan"
    Path(checks.settings.store_path, planted).unlink()

    restored = reindex_report(checks.catalog, storage, source_id="keep-0")
    assert set(before) <= set(restored.created) and not restored.corrupt and not restored.failed
    with checks.catalog.read_session() as session:
        assert set(session.scalars(select(Capture.record_id).where(Capture.run_id.in_(pruned)))) == records
        back = {w.key: (w.size, w.sha256) for w in session.scalars(select(WarcFile).where(WarcFile.key.in_(before)))}
    assert back == before


def _plant_unknown_warc(checks: Checks, key: str) -> str:
    """A stored WARC no row and no retention list names (a copy under a new name)."""
    store = Path(checks.settings.store_path)
    copy = key.replace(".warc.gz", "-stray.warc.gz")
    shutil.copy(store / key, store / copy)
    return copy


def test_prune_from_the_command_line_and_from_the_scheduler(tmp_path: Path,
                                                                           demo_site: DemoSite) -> None:
    catalog_url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"   # the CLI is the same on both backends
    checks = Checks(tmp_path, demo_site, catalog_url)
    try:
        _prune_from_the_command_line(checks, catalog_url)
    finally:
        checks.close()


def _prune_from_the_command_line(checks: Checks, catalog_url: str) -> None:
    _full, quick = _old_checks(checks)
    env = {"LISTWATCH_CATALOG_URL": catalog_url}
    done = run_listwatch(["archive", "prune", "--dry-run", "--json"], data_dir=checks.settings.data_dir,
                         extra_env=env)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert (said["dry_run"], said["checks"], said["older_than_days"]) == (True, QUICK - 2, 30)
    assert said["days"][0]["source"] == "keep-0"
    assert _rows(checks, CrawlRun, "id", quick) == QUICK
    off = run_listwatch(["archive", "prune"], data_dir=checks.settings.data_dir,
                        extra_env={**env, "LISTWATCH_RETENTION__UNCHANGED_DAYS": "0"})
    assert off.returncode == 2 and "retention is off" in off.stderr and "--older-than-days" in off.stderr
    # the scheduler's retention pass (no sources: nothing else runs)
    empty = checks.settings.sources_dir.parent / "no-sources"
    empty.mkdir()
    daemon_env = env_for(checks.settings.data_dir, empty, checks.site.url) | env | {
        "LISTWATCH_RETENTION__INTERVAL": "1"}
    daemon = DaemonProcess(daemon_env, checks.settings.data_dir / "daemon.log")
    try:
        wait_for(lambda: daemon.says(f"retention: deleted the rows of {QUICK - 2} unchanged check(s)"), 90,
                 "the scheduler's retention pass")
        assert status_json(daemon_env)["sources"]["keep-0"]["runs"]["pruned"] == QUICK - 2
    finally:
        assert daemon.terminate() == 0, daemon.text()[-3000:]
    assert _rows(checks, CrawlRun, "id", quick) == 2
    again = run_listwatch(["archive", "prune"], data_dir=checks.settings.data_dir, extra_env=env)
    assert again.returncode == 0 and "deleted the rows of 0 unchanged check(s)" in again.stdout, again.stdout
