"""The per-page checks made cheaper for speed (issue 11) give the answers of their plain definitions.

``crawlers.challenge.is_shell`` (scripts and fewer than five ``href``) and ``crawlers.gone._visible_over`` (the
visible length of a page's head) take shortcuts; hypothesis compares them with the one-line definitions they
replaced, on markup mixing the pieces those shortcuts depend on.
"""

from __future__ import annotations

import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawlers.challenge import SHELL_LINKS, is_shell
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
