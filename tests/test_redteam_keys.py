"""Cosmetic churn in listing links must not be a change: a session id, form token or timestamp inside every
detail link (new on each crawl) made every programme "new", the old ones "missing", then "removed", on every
crawl. Real crawls (``listwatch crawl``) of a hostile site on loopback, into a real SQLite catalog."""

from __future__ import annotations

from pathlib import Path

import yaml

from crawlers.extractor import extract_page
from crawlers.sources import Source
from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml
from tests.programs_support import run_events

# One rotating spelling per programme: Java, PHP, ASP.NET cookieless, ColdFusion, a form token, a cache buster.
LINKS = ["/p/1.html;jsessionid={t}", "/p/2.html?PHPSESSID={t}", "/(S({t}))/p/3.aspx",
         "/p/4.cfm?id=4&CFID={t}&CFTOKEN={t}", "/p/5.html?csrf_token={t}", "/p/6.html?_={t}&utm_term={t}"]


def test_a_session_token_new_on_every_crawl_is_not_a_new_or_removed_programme(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with HostileSite() as site:
        path = tmp_path / "hostile.yaml"
        path.write_text(source_yaml(site.url), encoding="utf-8")
        runs = []
        for token in ("a1b2c3d4", "e5f6a7b8"):
            site.page("/list.html", listing_html([(link.format(t=token), f"Programme {n}")
                                                  for n, link in enumerate(LINKS, 1)]))
            crawl = crawl_sources([path], data_dir=data)["hostile"]
            assert crawl.report["complete"], crawl.report
            runs.append(crawl)
        # before: the second crawl said 6 new and 6 missing (and the third, 6 removed)
        assert run_events(data, runs[1].report["run_id"]) == {}
        assert sorted(i["key"] for i in runs[1].items) == [
            "/p/1.html", "/p/2.html", "/p/3.aspx", "/p/4.cfm?id=4", "/p/5.html", "/p/6.html"]
        # the link itself is kept as the page gave it (it is what the crawl follows)
        assert any(i["fields"]["url"].endswith("/p/2.html?PHPSESSID=e5f6a7b8") for i in runs[1].items)


def test_a_session_named_parameter_that_tells_items_apart_stays_in_their_keys() -> None:
    source = Source.model_validate(yaml.safe_load(source_yaml("http://x.gov.cn")))
    page = listing_html([("/d.jsp?sid=101", "One"), ("/d.jsp?sid=102", "Two"), ("/e.jsp?sid=S9", "Three"),
                         ("/f.jsp?id=7&sid=S9", "Four")])
    result = extract_page(source, "http://x.gov.cn/list.html", "listing", {"Content-Type": "text/html"},
                          page.encode())
    # ``sid`` is a subject id on d.jsp (dropping it would merge two programmes); elsewhere a session
    assert [i["key"] for i in result.items] == ["/d.jsp?sid=101", "/d.jsp?sid=102", "/e.jsp", "/f.jsp?id=7"]
