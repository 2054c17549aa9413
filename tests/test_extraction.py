"""The one extraction path on pages nobody designed for us: decoding, text, dates, shapes, filters, keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crawlers.dates import parse_date
from crawlers.demo.programmes import expected_programmes
from crawlers.demo.site import DemoSite
from crawlers.encoding import decode_body
from crawlers.extract import canonical_key, parse_document
from crawlers.extractor import extract_page
from crawlers.sources import Source, SourceError, load_source, load_sources
from tests.conftest import DEMO_SOURCES, run_listwatch

CAPTURED = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
TITLE = "Comisión de Servicios Públicos — 商务部公告"


def source(**extra: Any) -> Source:
    items = {"selector": "li", "fields": {"title": "a", "url": {"css": "a::attr(href)", "type": "url"},
                                         "date": {"css": "span", "type": "date"}}}
    data: dict[str, Any] = {"id": "t", "name": "t", "start_urls": ["https://www.example.gov/list/"], "items": items}
    for key, value in extra.items():
        if key.startswith("items_"):
            items[key[len("items_"):]] = value
        else:
            data[key] = value
    return Source.model_validate(data)


def page(body: str, charset: str = "utf-8") -> bytes:
    return f"<html><head><meta charset=utf-8></head><body><ul>{body}</ul></body></html>".encode(charset)


def listing(src: Source, body: bytes, content_type: str = "text/html; charset=utf-8") -> Any:
    return extract_page(src, "https://www.example.gov/list/", "listing", {"Content-Type": content_type}, body,
                        captured_at=CAPTURED)


# -- decoding -------------------------------------------------------------------------------------------

def test_latin1_header_over_utf8_bytes_is_decoded_as_utf8_and_the_conflict_is_reported() -> None:
    body = page(f'<li><a href="/d/1.html">{TITLE}</a><span>2026-03-05</span></li>')
    result = listing(source(), body, "text/html; charset=ISO-8859-1")  # a Java servlet default
    assert result.items[0]["fields"]["title"] == TITLE
    assert result.decoding["encoding"] == "utf-8" and "ISO-8859-1" in result.decoding["conflict"]
    assert any(p.startswith("charset:") for p in result.problems)  # the <meta> settles it: reported, not doubtful
    bare = body.replace(b"<meta charset=utf-8>", b"")
    unsettled = listing(source(), bare, "text/html; charset=ISO-8859-1")
    assert unsettled.items[0]["fields"]["title"] == TITLE
    assert any(p.startswith("charset-conflict:") for p in unsettled.problems)  # read against every declaration


def test_agreeing_declarations_report_no_conflict_and_gbk_still_decodes() -> None:
    assert not listing(source(), page("<li><a href='/a'>标题</a></li>")).problems
    gbk = "<meta charset=gbk><p>关于举办研修班的通知</p>".encode("gbk")
    decoded = decode_body(gbk, "text/html; charset=GBK")
    assert "关于举办研修班的通知" in decoded.text and not decoded.conflict


def test_windows_1252_page_that_is_not_utf8_keeps_its_declared_charset() -> None:
    decoded = decode_body("<p>Café résumé</p>".encode("cp1252"), "text/html; charset=windows-1252")
    assert "Café résumé" in decoded.text and decoded.how == "http" and not decoded.conflict


# -- text -----------------------------------------------------------------------------------------------

def test_text_keeps_line_break_and_block_boundaries() -> None:
    src = source()
    result = listing(src, page('<li><a href="/d/1"><b>Commission</b><br>Status<div>Open</div></a></li>'))
    assert result.items[0]["fields"]["title"] == "Commission Status Open"


def test_label_table_matches_a_label_cell_holding_a_line_break() -> None:
    src = source(detail={"table": {"rows": "tr", "labels": {"Commission Status": "status", "主办单位": "organizer"}}})
    body = ("<table><tr><th>Commission<br/>Status:</th><td>Active<br>since 2020</td></tr>"
            "<tr><th>主办<br>单位：</th><td>商务部</td></tr></table>").encode()
    result = extract_page(src, "https://www.example.gov/d/1", "detail", {"Content-Type": "text/html"}, body)
    assert result.fields == {"status": "Active since 2020", "organizer": "商务部"}


# -- dates ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value", "partial"), [
    ("二〇二六年三月五日", "2026-03-05", False),
    ("二〇二六年十二月三十一日", "2026-12-31", False),
    ("3天前", "2026-03-07", False),                       # against the capture, not today
    ("Sep - 2019 / 18 / Wed", "2019-09-18", False),
    ("2026-03", "2026-03", True),
    ("7月1日", "--07-01", True),                          # no year: never invented from the clock
    ("July 1", "--07-01", True),
    ("发布时间：2026年03月05日 10:20", "2026-03-05T10:20:00", False),
    ("2026-02-30", None, True),
])
def test_dates_are_resolved_against_the_capture_and_never_invented(text: str, value: str | None,
                                                                    partial: bool) -> None:
    parsed = parse_date(text, CAPTURED)
    assert parsed.value == value
    assert bool(parsed.problem) == partial


def test_missing_year_is_taken_from_the_capture_only_when_the_rule_says_so() -> None:
    assert parse_date("7月1日", CAPTURED, "capture").value == "2026-07-01"
    src = source(items_fields={"url": {"css": "a::attr(href)", "type": "url"},
                               "date": {"css": "span", "type": "date", "missing_year": "capture"}})
    result = listing(src, page('<li><a href="/a">x</a><span>12月30日</span></li>'))
    assert result.items[0]["fields"]["date"] == "2026-12-30" and not result.problems
    result = listing(source(), page('<li><a href="/a">x</a><span>12月30日</span></li>'))
    assert result.items[0]["fields"]["date"] == "--12-30" and any("no year" in p for p in result.problems)


# -- where the items are -------------------------------------------------------------------------------

def test_items_inside_html_comments() -> None:
    body = page('<li><a href="/d/1">one</a></li><!-- <li><a href="/d/2">two</a></li> -->')
    assert [i["fields"]["title"] for i in listing(source(), body).items] == ["one"]
    assert [i["fields"]["title"] for i in listing(source(items_comments=True), body).items] == ["one", "two"]


def test_items_from_a_javascript_object_literal_in_an_inline_script() -> None:
    script = """<script>var total = 2;
      var listData = {rows: [{title: '关于举办研修班的通知', link: "/d/7.html", time: '2026-03-05'},
                             {title: "Second", link: '/d/8.html', time: "2026年3月6日",}]};</script>"""
    src = source(items_script="listData", items_selector={"jsonpath": "$.rows[*]"},
                 items_fields={"title": {"jsonpath": "$.title"}, "url": {"jsonpath": "$.link", "type": "url"},
                               "date": {"jsonpath": "$.time", "type": "date"}})
    result = listing(src, page(script))
    assert [(i["key"], i["fields"]["title"], i["fields"]["date"]) for i in result.items] == [
        ("/d/7.html", "关于举办研修班的通知", "2026-03-05"), ("/d/8.html", "Second", "2026-03-06")]


def test_a_json_listing_links_to_html_detail_pages() -> None:
    src = Source.model_validate({
        "id": "j", "name": "j", "start_urls": ["https://api.example.gov/list"], "format": "json",
        "items": {"selector": {"jsonpath": "$.items[*]"}, "fields": {"url": {"jsonpath": "$.url", "type": "url"}}},
        "detail": {"fields": {"organizer": "td.org"}}})
    body = "<html><body><table><tr><td class=org>商务部</td></tr></table></body></html>".encode()
    result = extract_page(src, "https://www.example.gov/d/1.html", "detail",
                          {"Content-Type": "text/html; charset=utf-8"}, body)
    assert result.ok and result.fields == {"organizer": "商务部"}


def test_include_and_exclude_filters_keep_only_programmes() -> None:
    body = page('<li><a href="/d/1">研修班通知</a></li><li><a href="/d/2">招聘公告</a></li>'
                '<li><a href="/d/3">研修班更正公告</a></li>')
    src = source(items_include={"title": "研修班"}, items_exclude={"title": "更正"})
    assert [i["key"] for i in listing(src, body).items] == ["/d/1"]


def test_attachments_are_name_and_url_in_page_order() -> None:
    src = source(detail={"attachments": {}})
    body = ('<a href="/f/b.pdf">通知</a><a href="/f/a.doc"><span>回执</span></a><a href="/x.html">no</a>'
            '<a href="/f/b.pdf">again</a>').encode()
    result = extract_page(src, "https://www.example.gov/d/1", "detail", {"Content-Type": "text/html"}, body)
    assert result.attachments == [{"name": "通知", "url": "https://www.example.gov/f/b.pdf"},
                                  {"name": "回执", "url": "https://www.example.gov/f/a.doc"}]


def test_a_field_that_matches_nothing_on_most_items_is_a_problem() -> None:
    body = page("".join(f'<li><a href="/d/{n}">t{n}</a></li>' for n in range(6)))
    assert any("'date' matched nothing on 6 of 6" in p for p in listing(source(), body).problems)


# -- keys -----------------------------------------------------------------------------------------------

def test_keys_survive_scheme_host_and_port_changes() -> None:
    site = {"example.gov"}
    keys = {canonical_key(u, ["utm_source"], site) for u in (
        "http://example.gov:8080/d/1.html?id=3&utm_source=x#top", "https://www.example.gov/d/1.html?id=3",
        "HTTPS://EXAMPLE.GOV:443/d/1.html?id=3")}
    assert keys == {"/d/1.html?id=3"}
    assert canonical_key("https://other.gov:8443/a", [], site) == "//other.gov:8443/a"
    assert canonical_key("http://other.gov:80/a", [], site) == canonical_key("https://other.gov/a", [], site)
    assert canonical_key(" 12345 ", [], site) == "12345"


def test_parse_document_is_html_by_default() -> None:
    assert parse_document("<p>x</p>", "html").css("p::text").get() == "x"


# -- source files ---------------------------------------------------------------------------------------

def test_sources_check_compiles_xpath_css_and_jsonpath_and_fetches_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: x\nstart_urls: ['http://127.0.0.1:9/']\nitems:\n  selector: {xpath: \"//li\"}\n"
                   "  fields:\n    url: {xpath: \"//a[matches(@href, 'x')]/@href\"}\n    title: 'a[[['\n"
                   "    n: {jsonpath: '$..[?'}\n", encoding="utf-8")
    done = run_listwatch(["sources", "check", str(bad)], data_dir=tmp_path)
    message = " ".join(done.stderr.split())
    assert done.returncode == 1
    assert "items.fields.url: XPath" in message and "matches(), which is not an XPath 1.0 function" in message
    assert "items.fields.title: CSS 'a[[[' is not a valid selector" in message
    assert "items.fields.n: JSONPath '$..[?' does not parse" in message


def test_one_broken_file_in_the_sources_folder_is_an_error_for_that_file_only(tmp_path: Path) -> None:
    (tmp_path / "a-broken.yaml").write_text("id: broken\nname: [unclosed\n", encoding="utf-8")
    (tmp_path / "good.yaml").write_text("id: good\nname: x\nstart_urls: ['http://x/']\nformat: feed\n",
                                        encoding="utf-8")
    errors: list[SourceError] = []
    assert list(load_sources(tmp_path, errors)) == ["good"]
    assert len(errors) == 1 and "a-broken.yaml: not valid YAML" in str(errors[0])
    with pytest.raises(SourceError):
        load_sources(tmp_path)


def test_environment_references_inside_yaml_comments_are_not_expanded(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LW_TEST_HOST", "http://example.gov")
    path = tmp_path / "s.yaml"
    path.write_text("# serve at ${NO_SUCH_LISTWATCH_VAR}/list\nid: s  # not ${NO_SUCH_LISTWATCH_VAR} either\n"
                    "name: 'a # b ${LW_TEST_HOST}'\nstart_urls: [\"${LW_TEST_HOST}/list\"]\nformat: feed\n",
                    encoding="utf-8")
    loaded = load_source(path)
    assert loaded.start_urls == ["http://example.gov/list"] and loaded.name == "a # b http://example.gov"


def test_sources_test_prints_the_items_and_every_problem_without_archiving(tmp_path: Path,
                                                                           demo_site: DemoSite) -> None:
    text = (DEMO_SOURCES / "mofcom.yaml").read_text(encoding="utf-8")
    path = tmp_path / "m.yaml"
    path.write_text(text.replace("    detail_title:", "    missing: 'div.no-such-thing'\n    detail_title:"),
                    encoding="utf-8")
    done = run_listwatch(["sources", "test", str(path), "--details", "2"], data_dir=tmp_path, site=demo_site,
                         extra_env={"COLUMNS": "1000"})
    assert done.returncode == 0, done.stderr
    first = expected_programmes("mofcom", 0)[0]
    out = " ".join(done.stdout.split())
    assert first["title"][:12] in out and "organizer" in out and "3 pages fetched" in out
    # the demo's detail pages claim utf-8 over GBK bytes: shown as a problem, decoded right
    assert "charset: http charset says utf-8" in out
    assert "detail field 'missing' matched nothing on 2 of 2 detail pages" in out
    assert not (tmp_path / "spool").exists() and not list(tmp_path.rglob("*.warc.gz"))


def test_detail_pages_answering_404_make_the_crawl_degraded_and_are_counted(tmp_path: Path,
                                                                          demo_site: DemoSite) -> None:
    text = (DEMO_SOURCES / "mofcom.yaml").read_text(encoding="utf-8")
    broken = text.replace("id: demo-mofcom", "id: broken-links").replace(
        '    url: {css: "a::attr(href)", type: url}',
        '    url: {css: "a::attr(href)", type: url}\n'
        '    link: {css: "a::attr(href)", regex: "(.*)\\\\.html", type: url}'
    ).replace("  link: url", "  link: link")
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    done = run_listwatch(["crawl", "--json", str(path)], data_dir=tmp_path, site=demo_site)
    [report] = json.loads(done.stdout)
    tried = report["pages_failed"]["detail"]
    assert tried >= 10 and report["detail_gone"] == tried and report["pages_ok"]["detail"] == 0
    assert report["complete"] and report["status"] == "degraded"
    assert any(f"{tried} of {tried} detail pages failed" in reason for reason in report["degraded"])
    from archive.catalog.models import CrawlRun
    from tests.programs_support import pipeline_catalog

    catalog = pipeline_catalog(tmp_path)
    with catalog.session() as session:
        assert session.get(CrawlRun, report["run_id"]).status == "degraded"  # as recorded, not only as printed
    catalog.dispose()


def test_sources_test_keeps_to_the_fetch_policy() -> None:
    from crawlers.trial import fetch

    local = Source.model_validate({"id": "l", "name": "l", "start_urls": ["http://127.0.0.1:9/list"], "format": "feed"})
    for url in ("http://10.0.0.1/detail/1.html", "http://other.example/detail/1.html"):  # refused before any socket
        with pytest.raises(ValueError, match="refused by the fetch policy"):
            fetch(url, local)
