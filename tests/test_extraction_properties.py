"""Property-based tests: decoding, date parsing, text extraction and rule application never crash or hang.

Each property runs a fixed number of examples (``BUDGET``) with hypothesis's per-example deadline, so a
regression to a slow path fails instead of stalling CI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawlers.dates import parse_date
from crawlers.encoding import decode_body
from crawlers.extract import canonical_key, node_text, parse_document
from crawlers.extractor import extract_page
from crawlers.sources import Source

BUDGET = settings(max_examples=150, deadline=timedelta(seconds=2),
                  suppress_health_check=[HealthCheck.too_slow])
CHARSETS = st.sampled_from([None, "text/html", "text/html; charset=utf-8", "text/html; charset=ISO-8859-1",
                            "text/html; charset=gbk", "text/html; charset=nonsense", "application/json"])
TAGS = st.sampled_from(["p", "br", "div", "li", "a", "span", "td", "th", "tr", "b", "script", "!--"])
FRAGMENT = st.lists(st.one_of(st.text(max_size=20), TAGS.map(lambda t: f"<{t}>"), TAGS.map(lambda t: f"</{t}>")),
                    max_size=30).map("".join)
SOURCE = Source.model_validate({
    "id": "p", "name": "p", "start_urls": ["https://example.gov/list/"],
    "items": {"selector": "li", "comments": True, "include": {"title": "."},
              "fields": {"title": "a", "url": {"css": "a::attr(href)", "type": "url"},
                         "date": {"css": "span", "type": "date"}, "n": {"regex": r"(\d+)", "type": "int"}}},
    "detail": {"fields": {"when": {"xpath": "//td", "type": "date", "missing_year": "capture"}},
               "table": {"labels": {"主办单位": "organizer"}}, "attachments": {}}})
CAPTURED = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@BUDGET
@given(body=st.binary(max_size=3000), content_type=CHARSETS)
def test_decoding_arbitrary_bytes_never_fails(body: bytes, content_type: str | None) -> None:
    decoded = decode_body(body, content_type)
    assert isinstance(decoded.text, str) and decoded.encoding
    if not body.isascii():
        try:
            utf8 = body.decode("utf-8")
        except UnicodeDecodeError:
            return
        # Bytes that prove UTF-8 are never read as anything else, unless a CJK declaration also reads them and
        # the UTF-8 reading is mostly 2-byte characters (「通知」 in GBK is U+0368 U+05AA): then the declaration.
        wide = [c >= "\u0800" for c in utf8 if c >= "\x80"]
        declared_gbk = content_type is not None and content_type.endswith("gbk") and _decodes(body, "gb18030")
        assert decoded.text == (body.decode("gb18030") if declared_gbk and sum(wide) * 2 < len(wide) else utf8)


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


@BUDGET
@given(text=st.text(max_size=60), captured=CAPTURED, missing_year=st.sampled_from(["partial", "capture"]))
def test_date_parsing_never_crashes_and_gives_iso_or_nothing(text: str, captured: datetime, missing_year: str) -> None:
    parsed = parse_date(text, captured, missing_year)
    if parsed.value is not None:
        assert parsed.value[:2] == "--" or parsed.value[:4].isdigit()


@BUDGET
@given(year=st.integers(1900, 2100), month=st.integers(1, 12), day=st.integers(1, 28),
       noise=st.sampled_from(["", "发布日期：", "[", "Posted "]))
def test_full_dates_round_trip(year: int, month: int, day: int, noise: str) -> None:
    for text in (f"{noise}{year}-{month:02d}-{day:02d}", f"{noise}{year}年{month}月{day}日"):
        assert parse_date(text).value == f"{year:04d}-{month:02d}-{day:02d}"


@BUDGET
@given(fragment=FRAGMENT)
def test_text_extraction_of_arbitrary_markup_is_whitespace_normalised(fragment: str) -> None:
    doc = parse_document(f"<html><body>{fragment}</body></html>", "html")
    for node in doc.xpath("//body | //body//*"):
        text = node_text(node)
        assert isinstance(text, str)


@BUDGET
@given(fragment=FRAGMENT, content_type=CHARSETS, captured=CAPTURED, role=st.sampled_from(["listing", "detail"]),
       status=st.sampled_from([200, 404, 503]))
def test_rules_applied_to_arbitrary_pages_never_crash(fragment: str, content_type: str | None,
                                                      captured: datetime, role: str, status: int) -> None:
    body = f"<ul><li><a href='/d/1'>{fragment}</a><span>{fragment}</span></li>{fragment}</ul>".encode()
    headers = {"Content-Type": content_type} if content_type else {}
    result = extract_page(SOURCE, "https://example.gov/list/", role, headers, body, status=status,
                          captured_at=captured)
    assert result.ok or result.problem or result.challenge
    for item in result.items:
        title = item["fields"].get("title") or ""
        assert item["key"] and title == " ".join(title.split())  # whitespace-normalised


@BUDGET
@given(value=st.text(max_size=80))
def test_key_canonicalisation_is_idempotent(value: str) -> None:
    once = canonical_key(value, ["utm_source"], {"example.gov"})
    assert canonical_key(once, ["utm_source"], {"example.gov"}) == once


@BUDGET
@given(first=st.text(st.characters(categories=["L"]), min_size=1, max_size=12),
       second=st.text(st.characters(categories=["L"]), min_size=1, max_size=12),
       between=st.sampled_from(["<br>", "<br/>", "</p><p>", "<div>", "</div>", "</li><li>", "</td><td>"]))
def test_block_and_line_break_boundaries_separate_words(first: str, second: str, between: str) -> None:
    doc = parse_document(f"<html><body><div><p>{first}{between}{second}</p></div></body></html>", "html")
    assert " ".join(node_text(doc.xpath("//body")[0]).split()) == f"{first} {second}"
