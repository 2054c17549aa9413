"""Pure parts of the crawler: decoding, extraction rules, pagination, challenge detection, source validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawlers.challenge import detect_challenge
from crawlers.encoding import decode_body
from crawlers.extract import apply_rule, extract_items, iso_date, normalise_key, parse_document
from crawlers.pagination import next_pages
from crawlers.sources import Items, Pagination, Rule, SourceError, load_source

TEXT = "关于举办2026年发展中国家数字经济官员研修班的通知 主办单位：商务部"


@pytest.mark.parametrize(("body", "content_type", "how"), [
    (TEXT.encode("gbk"), "text/html; charset=utf-8", "detected"),              # header lies: utf-8 over GBK
    (b'<meta charset="gb2312">' + TEXT.encode("gbk"), "text/html; charset=utf-8", "meta"),
    (TEXT.encode("gb18030"), "text/html; charset=GBK", "http"),
    (TEXT.encode("utf-8"), "text/html", "utf-8"),                              # the bytes prove UTF-8
    ("\ufeff".encode() + TEXT.encode("utf-8"), "text/html; charset=gbk", "bom"),
    (TEXT.encode("gbk"), None, "detected"),
])
def test_decode_body_recovers_chinese_text(body: bytes, content_type: str | None, how: str) -> None:
    decoded = decode_body(body, content_type)
    assert TEXT in decoded.text
    assert decoded.how == how


def test_gb2312_declared_page_with_gbk_only_characters_decodes_as_superset() -> None:
    body = '<meta charset="gb2312"><p>镕</p>'.encode("gbk")  # 镕 is in GBK but not GB2312
    assert "镕" in decode_body(body, "text/html").text


def test_override_wins() -> None:
    assert decode_body(TEXT.encode("gbk"), "text/html; charset=utf-8", override="gbk").text == TEXT


@pytest.mark.parametrize(("text", "iso"), [
    ("2026年4月15日", "2026-04-15"), ("发布日期：2026-03-05", "2026-03-05"), ("2026/3/5", "2026-03-05"),
    ("Wed, 18 Feb 2026 09:00:00 +0800", "2026-02-18T09:00:00+08:00"), ("not a date", None),
])
def test_dates_become_iso_8601(text: str, iso: str | None) -> None:
    assert iso_date(text) == iso


def test_css_xpath_regex_jsonpath_rules() -> None:
    doc = parse_document('<ul><li><a href="/d/1.html?utm_source=x#top">标题 一</a><i>编号：A-17</i></li></ul>', "html")
    items = Items(selector=Rule(css="li"), fields={
        "title": Rule(css="a"), "url": Rule(xpath="./a/@href", type="url"),
        "no": Rule(css="i::text", regex=r"编号：(\S+)")}, key="url")
    [item] = extract_items(doc, items, "http://gov.example/list/")
    assert item == {"title": "标题 一", "url": "http://gov.example/d/1.html?utm_source=x#top", "no": "A-17"}
    assert normalise_key(item["url"], ["utm_source"]) == "http://gov.example/d/1.html"
    data = parse_document('{"data": {"rows": [{"t": "x", "n": "3"}]}}', "json")
    assert apply_rule(data, Rule(jsonpath="$.data.rows[0].n", type="int"), "") == 3


def test_css_rule_on_json_is_a_clear_error() -> None:
    from crawlers.extract import ExtractionError

    with pytest.raises(ExtractionError, match="use jsonpath"):
        apply_rule({"a": 1}, Rule(css="a"), "")


def test_reverse_numbered_pages_count_down_to_the_oldest() -> None:
    rules = Pagination(kind="reverse_numbered", template="list_{n}.html", total=Rule(regex=r"共(\d+)页", type="int"))
    doc = parse_document("<p>共4页</p>", "html")
    pages = next_pages(rules, start_url="http://x/t/list.html", url="http://x/t/list.html", number=1, doc=doc,
                       item_count=10)
    assert [p.url for p in pages] == ["http://x/t/list_3.html", "http://x/t/list_2.html", "http://x/t/list_1.html"]


def test_template_and_param_paging_stop_on_an_empty_page() -> None:
    doc = parse_document("<p></p>", "html")
    rules = Pagination(kind="template", template="index_{n}.html")
    assert next_pages(rules, start_url="http://x/l/index.html", url="http://x/l/index.html", number=1, doc=doc,
                      item_count=10)[0].url == "http://x/l/index_1.html"
    assert next_pages(rules, start_url="http://x/l/index.html", url="http://x/l/index_3.html", number=4, doc=doc,
                      item_count=0) == []
    params = Pagination(kind="param", param="p")
    assert next_pages(params, start_url="http://x/api?p=1&s=5", url="http://x/api?p=1&s=5", number=1, doc={},
                      item_count=5)[0].url == "http://x/api?s=5&p=2"


@pytest.mark.parametrize("rules", [
    Pagination(kind="template", template="index_{n}.html", total=Rule(regex=r"共(\d+)页", type="int")),
    Pagination(kind="reverse_numbered", template="list_{n}.html", total=Rule(regex=r"共(\d+)页", type="int")),
    Pagination(kind="template", template="index_{n}.html"),
    Pagination(kind="param", param="p"),
    Pagination(kind="param", param="p", total=Rule(regex=r"共(\d+)页", type="int")),
    Pagination(kind="next_link", next=Rule(css="a.next::attr(href)")),
    Pagination(kind="none"),
])
def test_pages_not_read_again_give_the_same_next_pages_unread(rules: Pagination) -> None:
    """An unchanged listing page whose pagination does not read it (``reads_page``) is not parsed again: its
    next pages computed without the page must be the ones computed from it, on every page number."""
    from crawlers.pagination import expected_page_count, reads_page

    doc = parse_document('<p>共4页</p><a class="next" href="index_9.html">next</a>', "html")
    unread = parse_document("<p>a page that says nothing</p>", "html")
    for number in (1, 2, 3, 4):
        if reads_page(rules, number):
            continue
        url = "http://x/l/index.html" if number == 1 else f"http://x/l/index_{number - 1}.html"
        given = [[(p.url, p.number) for p in next_pages(rules, start_url="http://x/l/index.html", url=url,
                                                         number=number, doc=page, item_count=10)]
                 for page in (doc, unread)]
        assert given[0] == given[1], (rules.kind, number)
        if number == 1:  # the spider asks the first page how many there are
            assert expected_page_count(rules, doc, url) == expected_page_count(rules, unread, url)
    assert reads_page(rules, 1) == (rules.kind != "none" and (rules.total is not None or rules.kind == "next_link"))


@pytest.mark.parametrize(("status", "headers", "body", "name"), [
    (412, {}, "<script>document.cookie=('__jsl_clearance_s=1');location.href=location.pathname</script>", "jiasule"),
    (503, {"cf-mitigated": "challenge"}, "<title>Just a moment...</title>", "cloudflare"),
    (200, {}, "<script>document.cookie='a=b';window.location.reload()</script>", "js-cookie"),
])
def test_challenge_pages_are_recognised(status: int, headers: dict[str, str], body: str, name: str) -> None:
    assert detect_challenge(status, headers, body) == name


def test_ordinary_listing_is_not_a_challenge() -> None:
    page = "<html><body><ul>" + "<li><a href='/a'>培训班</a></li>" * 30 + "</ul><script>var x=1;</script></body></html>"
    assert detect_challenge(200, {"Server": "nginx"}, page) is None


def test_demo_sources_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTWATCH_DEMO_URL", "http://127.0.0.1:1")
    for path in (Path(__file__).parent.parent / "crawlers" / "demo" / "sources").glob("*.yaml"):
        assert load_source(path).id.startswith("demo-")


def test_source_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(SourceError, match="expected a mapping"):
        load_source(path)


@pytest.mark.parametrize(("status", "requested", "final", "text", "verdict"), [
    (404, "http://g/d/1.html", "http://g/d/1.html", "", "http-404"),
    (410, "http://g/d/1.html", "http://g/d/1.html", "", "http-410"),
    (200, "http://g/d/1.html", "http://g/d/1.html", "<title>提示</title><p>抱歉，您访问的页面不存在！</p>", "soft-404"),
    (200, "http://g/d/1.html", "http://g/list/index.html", "<ul><li>…</li></ul>", "redirect-to-index"),
    (200, "http://g/d/1.html", "http://g/", "<html>home</html>", "redirect-to-index"),
    (200, "http://g/d/1.html", "http://g/d/1.html", "<title>培训班通知</title>" + "<p>正文</p>" * 400
     + "<p>如页面不存在请联系管理员</p>", None),
    (200, "http://g/d/1.html", "http://g/d/2.html", "<title>培训班</title><p>正文</p>", None),
])
def test_gone_verdicts(status: int, requested: str, final: str, text: str, verdict: str | None) -> None:
    from crawlers.gone import gone_reason

    assert gone_reason(status, requested, final, text, ["http://g/list/index.html"]) == verdict
