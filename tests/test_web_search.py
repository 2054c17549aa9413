"""Programme search and list filters on SQLite (FTS5 trigram + LIKE) and a real PostgreSQL (pg_trgm + LIKE)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import Program
from archive.programs.query import list_programs
from archive.programs.store import posted_date, search_text
from scheduler.cli.programs import app as programs_app
from scheduler.web.data import BadFilter, ProgrammeQuery, list_programmes
from tests import postgres

postgres_url = postgres.postgres_url      # the session fixture (a throwaway cluster)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TITLES = ["2026年东盟国家杂交水稻技术研修班", "非洲国家水稻种植培训班", "太平洋岛国卫星遥感应用研讨会",
          "Port Management Seminar for ASEAN", "拉美国家数字经济官员研修班", "东盟国家港口管理研修班"]


def _fill(catalog: Catalog) -> None:
    with catalog.session() as s:
        for i, title in enumerate(TITLES):
            fields = {"date": (T0 + timedelta(days=i)).date().isoformat(), "location": "北京市" if i % 2 else "上海",
                      "attachments": [{"name": f"附件{i}_名单.xlsx", "url": f"https://x/{i}.xlsx"}]}
            s.add(Program(source_id="a" if i < 3 else "b", key=f"k{i}", title=title, fields=fields,
                          status="removed" if i == 5 else "active", first_seen=T0 + timedelta(hours=i),
                          last_seen=T0 + timedelta(hours=i), search_text=search_text(title, fields),
                          posted=posted_date(fields)))
        s.add(Program(source_id="c", key="end", title="seminar", fields={"location": "广西"}, status="active",
                      first_seen=T0, last_seen=T0, search_text=search_text("seminar", {"location": "广西"})))
    with catalog.session() as s:   # an edit must reach the search index (SQLite: FTS triggers)
        s.query(Program).filter(Program.key == "k4").update(
            {"title": "拉美国家数字经济研讨会", "search_text": search_text("拉美国家数字经济研讨会", {})})


def test_search_and_filters_agree_with_a_plain_scan(catalog_url: str) -> None:
    catalog = open_catalog(catalog_url)
    _fill(catalog)

    def titles(**query: object) -> list[str]:
        rows, _ = list_programmes(catalog, ProgrammeQuery(per_page=100, **query))  # type: ignore[arg-type]
        return [r["title"] for r in rows]

    assert sorted(titles(q="水稻")) == sorted(t for t in TITLES if "水稻" in t)           # two characters: LIKE
    assert titles(q="杂交水稻") == [TITLES[0]]                                            # trigram index
    assert titles(q="东盟 研修班") == [TITLES[5], TITLES[0]]                              # every term, newest first
    assert titles(q="asean port") == [TITLES[3]]                                          # case-insensitive
    assert titles(q="附件2_名单") == [TITLES[2]]                                          # attachment names; _ literal
    assert titles(q="官员研修班") == [] and titles(q="数字经济研讨") == ["拉美国家数字经济研讨会"]
    assert titles(q="100%") == []
    assert titles(q="广西") == ["seminar"] and titles(q="西") == ["seminar"]            # at the very end of the text
    assert sorted(titles(q="稻")) == sorted(t for t in TITLES if "稻" in t)               # one character
    assert titles(q="水稻 遥感") == []
    assert titles(source="a", sort="title") == sorted(TITLES[:3])
    assert titles(status="removed") == [TITLES[5]]
    assert titles(posted_from="2026-03-03", posted_to="2026-03-04", sort="posted") == [TITLES[2], TITLES[3]]
    with pytest.raises(BadFilter, match="'2026-13-01'"):
        titles(posted_from="2026-13-01")
    catalog.dispose()


QUERIES = ("水稻", "杂交水稻", "东盟 研修班", "稻", "asean port", "Seminar", "附件2_名单", "100%", "水稻 遥感")


def test_the_cli_search_finds_what_the_web_finds_through_the_same_index(
        catalog_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    catalog = open_catalog(catalog_url)
    _fill(catalog)
    statements: list[str] = []
    event.listen(catalog.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for q in QUERIES:
        web, _ = list_programmes(catalog, ProgrammeQuery(q=q, per_page=100))
        statements.clear()
        cli = list_programs(catalog, text=q)
        assert [p.key for p in cli] == [r["key"] for r in web], q
        if catalog_url.startswith("sqlite"):
            assert any("programs_fts" in sql for sql in statements), (q, statements)   # the index, not a LIKE scan
    catalog.dispose()
    monkeypatch.setenv("LISTWATCH_CATALOG_URL", catalog_url)
    monkeypatch.setenv("LISTWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LISTWATCH_SETTINGS", str(tmp_path / "none.yaml"))
    for q, expected in (("东盟 研修班", ["k5", "k0"]), ("asean PORT", ["k3"])):
        done = CliRunner().invoke(programs_app, ["search", q, "--json"])
        assert done.exit_code == 0, done.output
        assert [p["key"] for p in json.loads(done.stdout)] == expected
