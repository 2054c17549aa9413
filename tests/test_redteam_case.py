"""A key that changes case: sites on case-insensitive servers (IIS, ASP.NET) write the same link as
``/News/Detail.aspx?ID=5`` one day and ``/news/detail.aspx?id=5`` the next. The programme was "new" under its
second spelling and "missing", then "removed", under its first. Likewise a CMS adding a trailing slash.
Real crawls of a hostile site on loopback."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import run_events


def test_a_link_written_in_another_case_or_with_a_trailing_slash_is_the_same_programme(tmp_path: Path) -> None:
    data, path = tmp_path / "data", tmp_path / "hostile.yaml"
    with HostileSite() as site:
        path.write_text(source_yaml(site.url), encoding="utf-8")
        site.page("/list.html", listing_html([(f"/News/Detail.aspx?ID={n}", f"Programme {n}") for n in (1, 2, 3)]))
        assert crawl_sources([path], data_dir=data)["hostile"].report["complete"]
        site.page("/list.html", listing_html([(f"/news/detail.aspx?id={n}", f"Programme {n}") for n in (1, 2, 3)]
                                             + [("/news/detail.aspx?id=4", "Programme 4"), ("/p/9", "Nine")]))
        lower = crawl_sources([path], data_dir=data)["hostile"]
        # before: 4 new and 3 missing (then removed); now only the programme really new
        assert run_events(data, lower.report["run_id"]) == {"new": 2}
        site.page("/list.html", listing_html([(f"/News/Detail.aspx?ID={n}", f"Programme {n}") for n in (1, 2, 3)]
                                             + [("/news/detail.aspx?id=4", "Programme 4"), ("/p/9/", "Nine")]))
        back = crawl_sources([path], data_dir=data)["hostile"]
        assert run_events(data, back.report["run_id"]) == {}
