"""Extraction without a crawl: a source's rules applied to one archived page (no Scrapy reactor).

This is the same function the live spider calls (:func:`crawlers.extractor.extract_page`), re-exported
here for ``listwatch programs reprocess``: given a source, a page URL, its role (listing or detail), its
HTTP status, headers, body and capture time, it returns what the crawl extracted from that page.
"""

from __future__ import annotations

from crawlers.extractor import Headers, PageResult, document_kind, extract_page, header_dict, page_text

__all__ = ["Headers", "PageResult", "document_kind", "extract_page", "header_dict", "page_text"]
