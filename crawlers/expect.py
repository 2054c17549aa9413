"""Does a fetched listing page yield what the source expects of it? A pure decision.

A listing page that answers 200 is not necessarily the listing: a 「系统繁忙」 ("system busy") page, a
maintenance notice, or a list nested too deep for the parser all answer 200 without a single item.
Counting such a page as seen lets the programme diff declare every programme on it missing, then removed.
So a listing page counts as seen only when

- its item selector matched and not every item lacks a key, or
- it is the documented empty last page: an empty page after the first one, on pagination that ends at
  an empty page (``template`` or ``param`` without a ``total``), that the source's ``pagination.end`` rule
  matches. An empty page that nothing documents as the end looks exactly like a busy page, so it is not
  seen (paging stops there either way), or
- it is the documented empty listing: a first page without items that the ``pagination.end`` rule
  matches ("暂无", "No programmes are currently open"). The listing is then honestly empty: every programme
  it held is gone, so the guards against far fewer items than usual step aside (``crawlers.report.EMPTY_LISTING``), and
  the empty page is the evidence of their removal. A small source's programmes can only ever be declared
  removed this way when its page lists nothing.

Anything else is a failed listing page (problem kind ``no-items``), which makes the crawl incomplete, so no
programme is declared missing or removed from it. The spider calls :func:`listing_problem` on every listing
page (and :func:`end_matches` for an empty one); any other extractor of listing pages must do the same.
"""

from __future__ import annotations

from crawlers.extract import Node, apply_rule
from crawlers.sources import Pagination

NO_ITEMS = "no-items"


def ends_on_empty_page(pagination: Pagination) -> bool:
    """True when this pagination stops at the first page without items (no count says where it ends)."""
    return pagination.kind in ("template", "param") and pagination.total is None


def end_matches(pagination: Pagination, doc: Node, url: str) -> bool:
    """Whether the source's ``pagination.end`` rule finds what its empty last page shows."""
    if pagination.end is None:
        return False
    found = apply_rule(doc, pagination.end.model_copy(update={"type": "html", "many": False}), url)
    return bool(found)


def listing_problem(pagination: Pagination, *, number: int, matched: int, keyless: int = 0,
                    end_matched: bool = False) -> str | None:
    """Why listing page ``number`` does not count as seen, or None when it does.

    ``matched``: items the item selector (and hook) produced; ``keyless``: how many of them have no key
    (items left out by ``include``/``exclude`` filters are neither); ``end_matched``: :func:`end_matches`.
    """
    if matched > 0 and keyless < matched:
        return None
    if matched > 0:
        return f"the item selector matched {matched} item(s) but none has a key: the page layout has changed"
    if number > 1 and ends_on_empty_page(pagination) and end_matched:
        return None  # the documented empty page that ends sequential paging
    if number == 1 and end_matched:
        return None  # the documented empty listing (see EMPTY_LISTING)
    hint = ""
    if pagination.end is None and number == 1:
        hint = " (if the listing is really empty, set pagination.end to what it then shows, e.g. {regex: '暂无'})"
    elif pagination.end is None and ends_on_empty_page(pagination):
        hint = " (set pagination.end to what the listing's empty last page shows)"
    return ("the item selector matched nothing on this listing page (a 'system busy' or maintenance page, "
            f"or a layout the selectors no longer fit): the page is not counted as seen{hint}")
