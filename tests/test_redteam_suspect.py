"""A listing that is suspect as a whole says nothing new either. When the guards refuse removals because the
listing looks replaced (far fewer items than usual, or most known programmes gone at once), its new keys are
as doubtful: a maintenance page whose one "back to the home page" link fits the item selector, or a token in
every link whose name no list knows (``?t=``), renamed on each crawl. Those "new" events used to be alerted;
they are now recorded as backfill (never alerted) and the source-health event says so. Real crawls."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from archive.catalog.models import Event
from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import pipeline_catalog

MAINTENANCE = "<html><body><h1>系统维护中</h1><ul class='list'><li><a href='/'>返回首页</a></li></ul></body></html>"


def _alerted(data_dir: Path, run_id: str) -> list[tuple[str, bool]]:
    catalog = pipeline_catalog(data_dir)
    try:
        with catalog.session() as session:
            return sorted((e.kind, e.backfill) for e in session.scalars(select(Event).where(
                Event.run_id == run_id, Event.kind.in_(("new", "missing", "removed", "source_health")))))
    finally:
        catalog.dispose()


def test_a_stray_link_on_a_maintenance_page_is_not_a_new_programme(tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "hostile.yaml"
    with HostileSite() as site:
        path.write_text(source_yaml(site.url), encoding="utf-8")
        site.page("/list.html", listing_html([(f"/p/{n}.html", f"Programme {n}") for n in range(1, 5)]))
        assert crawl_sources([path], data_dir=data)["hostile"].report["complete"]
        site.page("/list.html", MAINTENANCE)
        crawl = crawl_sources([path], data_dir=data)["hostile"]
    # before: ("new", False) for 返回首页, an alert
    assert _alerted(data, crawl.report["run_id"]) == [("new", True), ("source_health", False)]
    catalog = pipeline_catalog(data)
    with catalog.session() as session:
        health = session.scalars(select(Event).where(Event.run_id == crawl.report["run_id"],
                                                     Event.kind == "source_health")).one()
        assert "far fewer items than usual" in health.summary and "1 programme(s) new" in health.summary
    catalog.dispose()


def test_an_unknown_token_renamed_on_every_crawl_alerts_nothing_on_a_large_source(tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "hostile.yaml"
    with HostileSite() as site:
        path.write_text(source_yaml(site.url), encoding="utf-8")
        runs = []
        for token in ("1717000001", "1717000002"):
            site.page("/list.html", listing_html([(f"/p/{n}.html?t={token}", f"Programme {n}") for n in range(12)]))
            runs.append(crawl_sources([path], data_dir=data)["hostile"])
    # the vanish guard already refused the 12 removals; the 12 "new" were alerted
    assert _alerted(data, runs[1].report["run_id"]) == [("new", True)] * 12 + [("source_health", False)]
