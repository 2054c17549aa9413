"""Is a programme's detail page gone? Hard 404/410, a soft-404 page, or a redirect to an index.

Government CMSs rarely answer 404 for withdrawn notices: they serve 200 with 「抱歉，您访问的页面不存在！」
or bounce the visitor to the section index. These verdicts feed removal events, so they are strict:
soft-404 markers must sit in a short page or its title, not anywhere in a long article.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SOFT_404 = re.compile(
    r"页面不存在|您访问的页面不存在|找不到(该|此)?页面|页面(已|已经)?(被)?删除|信息(已|已经)?(被)?删除|"
    r"(该|此)?(信息|文章|内容)(已)?(不存在|已撤销|已下线)|page (you requested )?(was )?not found|404 not found",
    re.IGNORECASE,
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>|\s+")
_TAG = re.compile(r"<[^>]+>")
INDEX_NAMES = ("", "index.html", "index.htm", "index.shtml", "index.jsp", "default.html", "list.html")


def gone_reason(status: int | None, requested_url: str, final_url: str, text: str,
                listing_urls: list[str]) -> str | None:
    """``http-404``/``http-410``, ``soft-404``, ``redirect-to-index`` or None (the page is there)."""
    if status in (404, 410):
        return f"http-{status}"
    if status is None or status >= 400:
        return None
    if final_url != requested_url and _is_index(final_url, listing_urls):
        return "redirect-to-index"
    title = _TITLE.search(text[:5000])
    if title and SOFT_404.search(title.group(1)):
        return "soft-404"
    # Only a short page can be a soft 404: strip tags from a head first and stop when it already holds
    # 600 visible characters (on a long page, stripping every tag cost more than parsing it). A shorter head
    # first: most pages already show 600 characters in their first 1,500, and a longer head only adds more.
    for head in (1_500, 4_000):
        cut = text.rfind(">", 0, head) + 1
        if 0 < cut < len(text) and _visible_over(text[:cut], 600):
            return None
    visible = _TAGS.sub(" ", text)
    if len(visible.strip()) < 600 and SOFT_404.search(visible):
        return "soft-404"
    return None


def _visible_over(fragment: str, limit: int) -> bool:
    """Does ``fragment`` show more than ``limit`` characters once tags and whitespace runs become one space?

    Its characters outside tags and whitespace are a lower bound of that length and five times cheaper to
    count on CJK text (the tag pattern starts with a literal, the combined one does not): when they already
    exceed the limit the answer is yes; otherwise the exact length decides.
    """
    if len("".join(_TAG.sub("", fragment).split())) > limit:
        return True
    return len(_TAGS.sub(" ", fragment).strip()) > limit


def _is_index(url: str, listing_urls: list[str]) -> bool:
    parts = urlsplit(url)
    if any(_same_page(url, listing) for listing in listing_urls):
        return True
    return parts.path.rsplit("/", 1)[-1] in INDEX_NAMES and not parts.query


def _same_page(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.netloc, pa.path.rstrip("/"), pa.query) == (pb.netloc, pb.path.rstrip("/"), pb.query)
