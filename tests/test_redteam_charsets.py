"""Charset traps a browser reads right, through a real ``listwatch crawl`` of a hostile site on loopback.

Each page's declarations lie or are missing in a different way (a servlet container's ISO-8859-1 over GBK,
a ``<meta>`` after 5 KB of comments, a label Python does not know, a BOM against the header, a short GBK
text that happens to be valid UTF-8, UTF-8 with one character cut); the titles
that reach the items (and so the programmes, alerts and feeds) must be the text, never mojibake.
"""

from __future__ import annotations

from pathlib import Path

from crawlers.encoding import decode_body
from tests.conftest import crawl_sources
from tests.hostile import HostileSite

ZH = "关于开展2026年度科技计划项目申报工作的通知"
HANT = "關於開展年度科技計畫項目申報工作的通知"
JA = "令和八年度の補助金公募について申請を受け付けます"
KO = "2026년 연구개발 지원사업 공모 안내 및 신청 접수"
LATIN = "Appel à projets “Recherche” — Zürich"
PADDING = "<!-- " + "navigation " * 500 + " -->"   # 5.5 KB before the <meta>: past any prescan window

# (path, body encoding, Content-Type, what goes in <head>, title)
PAGES = [
    ("/servlet-gbk.html", "gb18030", "text/html; charset=ISO-8859-1", '<meta charset="gbk">', ZH),
    ("/servlet-gbk-bare.html", "gb18030", "text/html;charset=ISO-8859-1", "", ZH),
    ("/servlet-big5.html", "big5", "text/html; charset=iso-8859-1", "", HANT),
    ("/late-sjis.html", "shift_jis", "text/html", PADDING + '<meta charset="shift_jis">', JA),
    ("/late-euckr.html", "euc-kr", "text/html", PADDING + '<meta charset="euc-kr">', KO),
    ("/cp1252.html", "cp1252", "text/html; charset=ISO-8859-1", "", LATIN),
    ("/x-gbk.html", "gb18030", "text/html", '<meta charset="x-gbk">', ZH + "（二）"),
    ("/unknown.html", "gb18030", "text/html; charset=x-klingon", "", ZH + "（三）"),
    ("/bom16.html", "utf-16", "text/html; charset=gbk", "", ZH + "（四）"),
    # 「通知」 in GBK is also valid UTF-8 (U+0368 U+05AA): a right declaration must not lose to that accident
    ("/short-gbk.html", "gb18030", "text/html; charset=GBK", '<meta charset="gbk">', "通知"),
    # UTF-8 with one character cut (a CMS truncating bytes): statistical detection read the page as cp932
    ("/cut-utf8.html", "utf-8-cut", "text/html; charset=utf-8", '<meta charset="utf-8"><title>列表</title>',
     "关于开展申报"),
]


def _page(head: str, title: str, number: int) -> str:
    return (f"<html><head>{head}<title>{title}</title></head><body><ul class=\"list\">"
            f"<li><a href=\"/p/{number}.html\">{title}</a></li></ul></body></html>")


def test_lying_and_late_charset_declarations_give_readable_titles(tmp_path: Path) -> None:
    with HostileSite() as site:
        for number, (path, encoding, content_type, head, title) in enumerate(PAGES):
            body = _page(head, title, number).encode(encoding.removesuffix("-cut"))
            if encoding.endswith("-cut"):  # drop the last byte of 表 in the <head>
                start = body.index("表".encode())
                body = body[:start + 2] + body[start + 3:]
            site.page(path, body, headers=[("Content-Type", content_type)])
        starts = ", ".join(f"'{site.url}{path}'" for path, *_ in PAGES)
        source = tmp_path / "charsets.yaml"
        source.write_text(f"id: charsets\nname: Charset traps\nstart_urls: [{starts}]\n"
                          "politeness: {delay: 0, obey_robots: false}\nlimits: {retries: 0, timeout: 5}\n"
                          "items:\n  selector: 'ul.list > li'\n  key: url\n  fields:\n"
                          "    url: {css: 'a::attr(href)', type: url}\n    title: 'a'\n", encoding="utf-8")
        crawl = crawl_sources([source], data_dir=tmp_path / "d")["charsets"]
    titles = {item["listing_url"].removeprefix(site.url): item["fields"]["title"] for item in crawl.items}
    assert titles == {path: title for path, *_, title in PAGES}, crawl.report["warnings"]
    assert crawl.report["complete"], crawl.report


def test_legacy_labels_decode_with_their_browser_superset() -> None:
    """ISO-8859-1 is read as windows-1252 (curly quotes, not C1 controls); GB2312 as GB18030 (rare characters);
    Shift_JIS as windows-31j (NEC row 13: ①); EUC-KR as windows-949 (unified Hangul beyond KS X 1001)."""
    cases = [("ISO-8859-1", "“quoted” — €5", "cp1252"), ("gb2312", "𠀀镕", "gb18030"),
             ("Shift_JIS", "①申請", "cp932"), ("EUC-KR", "똠방각하", "cp949")]
    for label, text, superset in cases:
        body = f"<p>{text}</p>".encode(superset)
        decoded = decode_body(body, f"text/html; charset={label}")
        assert text in decoded.text and not decoded.note, (label, decoded)
    # Codecs that are not text encodings are unknown charsets, not a crash or a hex dump.
    assert "unknown" in decode_body("<p>政策</p>".encode("gb18030"), "text/html; charset=hex").note
