"""Re-extraction from the archive rebuilds programme history as backfill, and the programmes CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from archive.catalog import Catalog
from archive.catalog.models import Event, Outbox, Program
from archive.programs.reprocess import ReprocessResult, reprocess
from crawlers.demo import programmes as data
from crawlers.demo.site import DemoSite
from crawlers.sources import Rule, Source, load_source
from scheduler.cli.programs import app
from scheduler.health import CONDITIONS
from tests.conftest import DEMO_SOURCES
from tests.programs_support import crawl_day, pid, pipeline_catalog


def _events(catalog: object) -> Counter[tuple[str, str, str]]:
    with catalog.session() as s:  # type: ignore[attr-defined]
        keys = dict(s.execute(select(Program.id, Program.key)).all())
        return Counter((e.run_id, e.kind, pid(keys[e.program_id]) if e.program_id else "")
                       for e in s.scalars(select(Event)))


def _reprocess(catalog: Catalog, source: Source, data_dir: Path) -> ReprocessResult:
    """Re-extraction of ``source`` from what ``listwatch crawl`` left in ``data_dir`` (spool, store, run reports)."""
    return reprocess(catalog, source, spool_dir=data_dir / "spool", store_dir=data_dir / "archive", data_dir=data_dir)


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """demo-mofcom crawled on days 0-3 (day 2 with a failing listing page), through the real pipeline."""
    data_dir = tmp_path_factory.mktemp("reprocess") / "data"
    with DemoSite(bench_pages=50) as site:
        for day in range(4):
            site.set_fault("/mofcom/list/index_1.html", "503" if day == 2 else None)
            crawl_day(site, day, data_dir, source_ids=("demo-mofcom",))
        url = site.url
    return data_dir, url


def test_reprocess_with_a_changed_rule_rebuilds_history_as_backfill(
        archived: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data_dir, url = archived
    monkeypatch.setenv("LISTWATCH_DEMO_URL", url)
    catalog = pipeline_catalog(data_dir)
    live = _events(catalog)
    assert live and all(kind != "removed" for _, kind, _ in live)
    source = load_source(DEMO_SOURCES / "mofcom.yaml")
    assert source.detail is not None and source.items is not None
    extra = {**source.detail.fields, "crumb": Rule(css="div.crumb a:last-child::text")}
    changed = source.model_copy(update={"detail": source.detail.model_copy(update={"fields": extra})})
    result = _reprocess(catalog, changed, data_dir)
    assert len(result.runs) == 4
    # The same history (the new field is there from the first version on, so it is no change) ...
    assert _events(catalog) == live
    with catalog.session() as s:
        events = list(s.scalars(select(Event).where(Event.kind.not_in(CONDITIONS))))  # not health incidents
        assert events and all(e.backfill for e in events if not e.summary.startswith("recovered"))
        assert s.scalar(select(Outbox.id)) is None
        progs = list(s.scalars(select(Program)))
        assert {pid(p.key) for p in progs} == {p["id"] for d in range(4) for p in data.expected_programmes("mofcom", d)}
        assert all(p.fields.get("crumb") == "援外培训项目公告" for p in progs if p.status == "active")
    # ... and reprocessing twice gives the same again.
    _reprocess(catalog, changed, data_dir)
    assert _events(catalog) == live


def test_reprocess_with_a_title_rule_change_records_changes_only_as_backfill(
        archived: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, url = archived
    monkeypatch.setenv("LISTWATCH_DEMO_URL", url)
    catalog = pipeline_catalog(data_dir)
    source = load_source(DEMO_SOURCES / "mofcom.yaml")
    assert source.items is not None
    fields = {**source.items.fields, "title": Rule(css="a::text"), "date": Rule(css="span.date::text")}
    changed = source.model_copy(update={"items": source.items.model_copy(update={"fields": fields})})
    _reprocess(catalog, changed, data_dir)
    with catalog.session() as s:
        events = [e for e in s.scalars(select(Event).where(Event.kind.not_in(CONDITIONS)))
                  if not e.summary.startswith("recovered")]  # health incidents are kept as they were
        assert all(e.backfill for e in events)
        assert {e.kind for e in events} <= {"new", "changed", "missing", "reappeared", "source_health"}
        first = min(e.run_id for e in events)
        assert Counter(e.kind for e in events if e.run_id == first) == Counter(
            {"new": len(data.expected_programmes("mofcom", 0))})


def test_programmes_cli_lists_searches_shows_and_exports(archived: tuple[Path, str], tmp_path: Path) -> None:
    data_dir, _ = archived
    env = {"LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml")}
    runner = CliRunner()
    listed = runner.invoke(app, ["list", "--source", "demo-mofcom", "--status", "missing"], env=env)
    assert listed.exit_code == 0, listed.output
    edited = next(p for p in data.expected_programmes("mofcom", 1) if p["id"] == data.plan("mofcom").edited)
    found = runner.invoke(app, ["search", str(edited["title"])[5:12]], env=env)
    assert found.exit_code == 0 and "programme(s) matching" in found.output
    catalog = pipeline_catalog(data_dir)
    with catalog.session() as s:
        key = next(p.key for p in s.scalars(select(Program)) if pid(p.key) == edited["id"])
    shown = runner.invoke(app, ["show", "demo-mofcom", key], env=env)
    assert shown.exit_code == 0, shown.output
    assert data.EDITED_LOCATION in shown.output and "→" in shown.output and "urn:uuid:" in shown.output
    out = tmp_path / "programmes.json"
    exported = runner.invoke(app, ["export", "--format", "json", "--source", "demo-mofcom", "-o", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert len(rows) == len({p["id"] for d in range(4) for p in data.expected_programmes("mofcom", d)})
    assert runner.invoke(app, ["export", "--format", "csv"], env=env).exit_code == 0


def test_re_extraction_of_the_archive_gives_exactly_the_live_items(
        archived: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """One extraction path: every run's items rebuilt from its WARCs equal what the live crawl yielded."""
    from archive.programs.reprocess import Page, read_runs, rebuild_items, warc_paths

    data_dir, url = archived
    monkeypatch.setenv("LISTWATCH_DEMO_URL", url)
    catalog = pipeline_catalog(data_dir)
    source = load_source(DEMO_SOURCES / "mofcom.yaml")
    runs = read_runs(warc_paths(catalog, source.id, data_dir / "spool", data_dir / "archive"), source.id)
    bodies: dict[str, Page] = {}
    known: dict[str, str] = {}
    listing_urls: dict[str, int] = {}
    compared = 0
    for run in sorted(runs.values(), key=lambda r: (r.date, r.run_id)):
        for page in run.pages.values():
            if page.digest and page.rec_type == "response":
                bodies.setdefault(page.digest, page)
        rebuilt, _ = rebuild_items(source, run, bodies, known, listing_urls)
        lines = (data_dir / "runs" / source.id / run.run_id / "items.jsonl").read_text(encoding="utf-8")
        live = [json.loads(line) for line in lines.splitlines() if line.strip()]
        assert live, run.run_id

        def comparable(item: dict) -> tuple:
            detail = {k: v for k, v in (item.get("detail") or {}).items() if k in ("url", "status", "text", "gone")}
            return (item["key"], json.dumps(item["fields"], sort_keys=True, ensure_ascii=False),
                    json.dumps(item.get("attachments"), ensure_ascii=False), item.get("position"),
                    item.get("listing_url"), json.dumps(detail, sort_keys=True, ensure_ascii=False))

        assert sorted(map(comparable, rebuilt)) == sorted(map(comparable, live)), run.run_id
        compared += len(live)
    assert compared > 50
