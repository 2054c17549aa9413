"""Programme search and list filters on SQLite (FTS5 trigram + LIKE) and a real PostgreSQL (pg_trgm + LIKE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from archive.catalog import open_catalog
from archive.catalog.models import Program
from archive.programs.store import posted_date, search_text
from scheduler.web.data import BadFilter, ProgrammeQuery, list_programmes
from tests import postgres

postgres_url = postgres.postgres_url      # the session fixture (a throwaway cluster)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TITLES = ["2026年东盟国家杂交水稻技术研修班", "非洲国家水稻种植培训班", "太平洋岛国卫星遥感应用研讨会",
          "Port Management Seminar for ASEAN", "拉美国家数字经济官员研修班", "东盟国家港口管理研修班"]


def test_search_and_filters_agree_with_a_plain_scan(catalog_url: str) -> None:
    catalog = open_catalog(catalog_url)
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
