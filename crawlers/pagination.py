"""Pagination strategies: given a fetched listing page, which listing pages come next.

Pure functions of the source's ``Pagination`` rules and the page; the spider schedules the URLs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from crawlers.extract import Node, apply_rule
from crawlers.sources import Pagination
from crawlers.urls import resolve


@dataclass(frozen=True)
class PageRef:
    url: str
    number: int          # 1 = the start page, in crawl order


def next_pages(rules: Pagination, *, start_url: str, url: str, number: int, doc: Node,
               item_count: int) -> Iterable[PageRef]:
    """Listing pages to fetch after page ``number`` (``url``) which held ``item_count`` items (lazily)."""
    if rules.kind == "none" or number >= rules.max_pages:
        return []
    if rules.kind == "reverse_numbered":
        return _reverse_numbered(rules, start_url, doc) if number == 1 else []
    if rules.kind == "template" and rules.total is not None:
        return _all_from_total(rules, start_url, doc) if number == 1 else []
    if item_count == 0:
        return []  # an empty page ends sequential paging
    if rules.kind == "next_link":
        assert rules.next is not None
        href = apply_rule(doc, rules.next, url)
        target = resolve(url, str(href)) if href else None
        return [PageRef(target, number + 1)] if target else []
    if rules.kind == "template":
        return [PageRef(_template(rules, start_url, rules.first + number - 1), number + 1)]
    if rules.kind == "param":
        if rules.total is not None and _past_total(rules, doc, url, number):
            return []
        return [PageRef(with_param(start_url, rules.param, rules.first + number), number + 1)]
    return []


def reads_page(rules: Pagination, number: int) -> bool:
    """Whether :func:`next_pages` and :func:`expected_page_count` read listing page ``number`` itself (a page
    with items): a page count on the first page, a next link or a total on every page. Otherwise the next pages
    follow from the rules and the page number alone, and an unchanged page need not be parsed again."""
    if rules.kind == "none" or number >= rules.max_pages:
        return False
    if rules.kind in ("reverse_numbered", "template") and rules.total is not None:
        return number == 1
    return rules.kind == "next_link" or (rules.kind == "param" and rules.total is not None)


def expected_page_count(rules: Pagination, doc: Node, url: str) -> int | None:
    """How many listing pages the first page says exist, when the source can tell."""
    if rules.total is None or rules.kind not in ("reverse_numbered", "template"):
        return None
    total = _as_int(apply_rule(doc, rules.total, url))
    return min(total, rules.max_pages) if total else None


def template_page(rules: Pagination, start_url: str, number: int) -> str:
    """The URL of listing page ``number`` of template paging (page 1 is the start URL, page 2 uses ``first``)."""
    return _template(rules, start_url, rules.first + number - 2)


def _template(rules: Pagination, start_url: str, n: int) -> str:
    assert rules.template is not None
    return urljoin(start_url, rules.template.format(n=n))


def _reverse_numbered(rules: Pagination, start_url: str, doc: Node) -> Iterator[PageRef]:
    """Newest page unnumbered; with P pages the others are numbered P-1 (newer) down to 1 (oldest).

    Generated lazily, and P is capped at ``max_pages``: a page claiming 999,999,999 pages builds nothing."""
    total = expected_page_count(rules, doc, start_url) or 1
    return (PageRef(_template(rules, start_url, n), total - n + 1) for n in range(total - 1, 0, -1))


def _all_from_total(rules: Pagination, start_url: str, doc: Node) -> Iterator[PageRef]:
    total = expected_page_count(rules, doc, start_url) or 1
    return (PageRef(_template(rules, start_url, rules.first + i), i + 2) for i in range(total - 1))


def _past_total(rules: Pagination, doc: Node, url: str, number: int) -> bool:
    assert rules.total is not None
    total = _as_int(apply_rule(doc, rules.total, url))
    if total is None:
        return False
    pages = -(-total // rules.page_size) if rules.page_size else total
    return number >= pages


def _as_int(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def with_param(url: str, name: str, value: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, str(value)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
