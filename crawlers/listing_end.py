"""Where a listing really ends: a missing page that is a hole, and a next link that loops back.

Two ways a listing "ends" that are not its end:

- Template paging (``index_{n}.html``) without a page count ends at the first missing page. A page that is
  missing for a while (a 404 on page 4 of 5) ended it there too, so the programmes of pages 4 and 5 were
  declared missing, then removed. The spider therefore asks for the page after a missing one: if that page
  holds items, the missing page is a hole, the crawl is incomplete and paging goes on; if it is missing or
  empty too (or redirects to a page already fetched), the listing did end.
- A next link that leads back to a page already fetched (the last page's "next" pointing at the first page)
  ran the crawl to ``pagination.max_pages``, incomplete on every crawl. A link back to the first page is taken
  as the end of the listing (a warning); a link back to another earlier page is a pagination problem, so the
  crawl is incomplete: pages after it may exist unseen.
"""

from __future__ import annotations

from w3lib.url import canonicalize_url

HOLE = "missing-page"
LOOP = "page-loop"


def same_page(url: str) -> str:
    """A listing URL as compared for loops (query order and escaping ignored, fragments dropped)."""
    return canonicalize_url(url)


def hole_message(missing: str, number: int, after: str) -> str:
    return (f"listing page {number} ({missing}) answered HTTP 404 while the page after it ({after}) lists "
            "programmes: a hole in the listing, not its end; the crawl is incomplete, so nothing is declared removed")


def loop_message(number: int, target: str, to_start: bool) -> str:
    if to_start:
        return (f"the next link of listing page {number} leads back to the first page ({target}): taken as the "
                "end of the listing")
    return (f"the next link of listing page {number} leads back to an earlier page ({target}): paging stopped "
            "there, so later pages may be unseen; the crawl is incomplete, so nothing is declared removed")
