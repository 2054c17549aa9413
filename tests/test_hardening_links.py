"""Issue 8, failure 8: property tests over link resolution (hypothesis, a fixed budget of examples).

Whatever an href holds, resolving it, extracting it as an item's URL field, keying an item by it, listing a
page's outlinks or checking it against the fetch policy never raises: a bad link costs only itself.
"""

from __future__ import annotations

from html import escape

from hypothesis import given, settings
from hypothesis import strategies as st
from parsel import Selector

from crawlers.extract import extract_items, normalise_key, outlinks
from crawlers.fetch_policy import FetchPolicy
from crawlers.sources import Source
from crawlers.urls import is_fetchable, parses, resolve

BUDGET = settings(max_examples=300, deadline=None, derandomize=True)
URLISH = st.builds(lambda a, b, c: a + b + c,
                   st.sampled_from(["http://", "https://", "//", "/", "", "http://[", "mailto:", "javascript:"]),
                   st.text(alphabet="[]:@%/?#.-_x0123456789fd \t\n\x00é中", max_size=30),
                   st.text(max_size=10))
HREF = st.one_of(URLISH, st.text(max_size=60))
SOURCE = Source.model_validate({"id": "s", "name": "s", "start_urls": ["http://127.0.0.1:8000/list"],
                                "items": {"selector": "li", "key": "url",
                                          "fields": {"url": {"css": "a::attr(href)", "type": "url"}}}})
POLICY = FetchPolicy.for_source(SOURCE)


@BUDGET
@given(base=st.one_of(st.just("http://x.gov.cn/a/list.html"), URLISH), href=HREF)
def test_resolving_any_href_never_raises(base: str, href: str) -> None:
    url = resolve(base, href)
    assert url is None or parses(url)
    if is_fetchable(url):
        POLICY.refuse_url(str(url))


@BUDGET
@given(hrefs=st.lists(HREF, min_size=1, max_size=6))
def test_a_page_of_arbitrary_links_extracts_one_item_per_link(hrefs: list[str]) -> None:
    html = "".join(f'<li><a href="{escape(h)}">x</a></li>' for h in hrefs)
    doc = Selector(text=f"<ul>{html}</ul>")
    assert SOURCE.items is not None
    found = extract_items(doc, SOURCE.items, "http://x.gov.cn/list")
    assert len(found) == len(doc.css("li"))
    for fields in found:
        normalise_key(fields["url"], SOURCE.items.key_params_drop)
    assert all(parses(link) for link in outlinks(doc, "http://x.gov.cn/list"))


@BUDGET
@given(value=HREF)
def test_keys_and_policy_checks_accept_any_text(value: str) -> None:
    normalise_key(value, ["utm_source"])
    POLICY.refuse_url(value)
