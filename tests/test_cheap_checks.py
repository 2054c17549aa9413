"""The per-page work made cheaper for speed (issue 11) gives the answers of its plain definitions.

``crawlers.challenge.is_shell`` (scripts and fewer than five ``href``) and ``crawlers.gone._visible_over`` (the
visible length of a page's head) take shortcuts; hypothesis compares them with the one-line definitions they
replaced, on markup mixing the pieces those shortcuts depend on. ``decode_body`` may take Scrapy's decoding of
a page instead of decoding it again: the result must not change, whatever the bytes.
"""

from __future__ import annotations

import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse, TextResponse

from crawlers.capture import scrapy_utf8_text
from crawlers.challenge import SHELL_LINKS, is_shell
from crawlers.encoding import decode_body
from crawlers.gone import _visible_over

BUDGET = settings(max_examples=150, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
PIECES = st.sampled_from(["<script>", "<SCRIPT src=x>", "<Script>", "<ScRiPt>", "<scrip", "href", "hre", 'href="a"',
                          "<a href=/x>", "</a>", "<p>", "<br/>", "<", ">", " ", "\u3000", "\n\t", "\xa0", "研修班",
                          "text", "<div class='a b'>", "<!-- c -->"])
MARKUP = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=40).map("".join)
_TAGS = re.compile(r"<[^>]+>|\s+")


def shell_by_definition(head: str) -> bool:
    return head.count("href") < SHELL_LINKS and any(tag in head for tag in ("<script", "<SCRIPT", "<Script"))


@BUDGET
@given(head=MARKUP)
def test_is_shell_answers_as_its_definition(head: str) -> None:
    assert is_shell(head) == shell_by_definition(head)


@BUDGET
@given(fragment=MARKUP, limit=st.integers(min_value=0, max_value=60))
def test_visible_length_check_answers_as_the_exact_length(fragment: str, limit: int) -> None:
    assert _visible_over(fragment, limit) == (len(_TAGS.sub(" ", fragment).strip()) > limit)


def test_the_shortcuts_decide_both_ways() -> None:
    """Both answers occur (a check stuck on one answer would pass the properties above on too few cases)."""
    assert is_shell("<script>" + "href " * (SHELL_LINKS - 1)) and not is_shell("<script>" + "href " * SHELL_LINKS)
    assert not is_shell("<ScRiPt>") and is_shell('<Script src="x"></Script>')
    assert _visible_over("<p>研修班</p>" * 300, 600) and not _visible_over("<p>a</p>  <b>b</b>", 5)   # "a   b"
    assert _visible_over("a b c d", 6)   # the lower bound (4 characters) is not enough: the exact length (7) is


BODIES = st.one_of(st.text(max_size=60).map(lambda t: t.encode()), st.binary(max_size=60),
                   st.lists(st.sampled_from([b"\xef\xbf\xbd", "研修".encode(), "研".encode()[:2], b"\xff", b"<p>", b"a",
                                             "研".encode("gbk"), "\ufeff".encode()]), max_size=12).map(b"".join))
CONTENT_TYPES = st.sampled_from([None, "text/html", "text/html; charset=utf-8", "text/html; charset=gbk",
                                 "text/html; charset=ISO-8859-1", "text/html; charset=nonsense"])


@BUDGET
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_decoding_with_scrapys_utf8_text_gives_the_same_result(body: bytes, content_type: str | None) -> None:
    scrapys = body.decode("utf-8", "replace")   # what Scrapy's response.text holds when it read the page as UTF-8
    assert decode_body(body, content_type, utf8_text=scrapys) == decode_body(body, content_type)


def test_scrapys_text_is_offered_only_when_scrapy_read_utf8_html() -> None:
    page = "<html><body><p>研修班</p></body></html>"
    utf8 = HtmlResponse("http://g/1", body=page.encode(), headers={"Content-Type": "text/html; charset=utf-8"})
    assert scrapy_utf8_text(utf8) == page
    gbk = HtmlResponse("http://g/2", body=page.encode("gbk"), headers={"Content-Type": "text/html; charset=gbk"})
    assert scrapy_utf8_text(gbk) is None
    feed = TextResponse("http://g/3", body=page.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    assert scrapy_utf8_text(feed) is None   # only HTML: Scrapy has decoded it already (meta refresh)
