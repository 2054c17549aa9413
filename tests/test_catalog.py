"""The catalog on SQLite (default) and on a real PostgreSQL server: migrations and the whole crawl path."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from archive.catalog import open_catalog
from archive.catalog.models import Base, Capture, CrawlRun, Event, Program
from archive.cdx import query_captures
from archive.programs.search import include_object
from crawlers.demo.site import DemoSite
from tests import postgres
from tests.conftest import DEMO_SOURCES, crawl_sources

postgres_url = postgres.postgres_url


def test_migrations_build_exactly_the_models(catalog_url: str) -> None:
    catalog = open_catalog(catalog_url)
    with catalog.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        differences = compare_metadata(context, Base.metadata)
    catalog.dispose()
    assert differences == [], "models changed without a migration"


def test_crawl_path_end_to_end_on_each_backend(catalog_url: str, tmp_path: Path) -> None:
    env = {"LISTWATCH_CATALOG_URL": catalog_url}
    with DemoSite() as site:
        crawl_sources([DEMO_SOURCES / "tenders.yaml"], data_dir=tmp_path, site=site, extra_env=env)
        site.day = 1
        crawl_sources([DEMO_SOURCES / "tenders.yaml"], data_dir=tmp_path, site=site, extra_env=env)
    catalog = open_catalog(catalog_url)
    with catalog.session() as session:
        runs = session.scalars(select(CrawlRun.status).order_by(CrawlRun.started_at)).all()
        kinds = dict(session.execute(select(Event.kind, func.count()).where(~Event.backfill)
                                     .group_by(Event.kind)).all())
        programmes = session.scalar(select(func.count()).select_from(Program))
        captures = session.scalar(select(func.count()).select_from(Capture))
    assert runs == ["complete", "complete"]
    assert kinds.get("new") == 2 and kinds.get("changed") == 1, kinds
    assert programmes == 21 and captures > 40
    listing = f"{site.url}/tenders/list.html"
    assert len(query_captures(catalog, listing)) >= 2
    catalog.dispose()
