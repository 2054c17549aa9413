"""Extraction without a crawl: a source's rules applied to one archived page (no Scrapy reactor).

Given a :class:`~crawlers.sources.Source`, a page URL, its role (listing or detail), its HTTP status,
headers and body, :func:`extract_page` returns what the listing spider would have extracted from it.
Used by ``listwatch programs reprocess`` to re-run extraction over WARC files after rules change.
Decoding, challenge detection and the rules themselves are those of ``crawlers.encoding``,
``crawlers.challenge`` and ``crawlers.extract``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crawlers.challenge import detect_challenge
from crawlers.encoding import decode_body
from crawlers.extract import (
    FEED_ITEMS,
    ExtractionError,
    Node,
    apply_rule,
    convert,
    extract_fields,
    extract_items,
    label_table,
    normalise_key,
    parse_document,
)
from crawlers.sources import Source

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass
class PageResult:
    """What one page yields. Listing: ``items`` (``{"key", "fields", "position"}``). Detail: ``fields``,
    ``attachments`` and ``text``. ``challenge`` or ``problem`` say why nothing was extracted."""

    role: str
    items: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: list[str] = field(default_factory=list)
    text: str = ""
    challenge: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.challenge is None and self.problem is None


def header_dict(headers: Headers) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(str(name), str(value))
    return out


def document_kind(declared: str, content_type: str, text: str) -> str:
    """html, xml or json: the source's ``format``, else the Content-Type, else a sniff."""
    if declared == "feed":
        return "xml"
    if declared in ("html", "json"):
        return declared
    lowered = content_type.lower()
    if "json" in lowered:
        return "json"
    if any(t in lowered for t in ("rss", "atom", "/xml")) or text.lstrip().startswith("<?xml"):
        return "xml"
    return "html"


def page_text(doc: Node) -> str:
    if hasattr(doc, "xpath"):
        body = doc.xpath("//body")  # type: ignore[union-attr]
        return " ".join((body or doc).xpath("string()").get("").split())[:20_000]  # type: ignore[union-attr]
    return ""


def decode_page(source: Source, status: int, headers: Headers, body: bytes,
                rendered: bool = False) -> tuple[Node | None, str | None, str | None]:
    """(parsed document, challenge name, problem) for one page."""
    found = header_dict(headers)
    lowered = {k.lower(): v for k, v in found.items()}
    content_type = lowered.get("content-type", "")
    text = body.decode("utf-8", errors="replace") if rendered else \
        decode_body(body, content_type, source.encoding).text
    challenge = detect_challenge(status, found, text)
    if challenge is not None:
        return None, challenge, None
    if status >= 400:
        return None, None, f"http-{status}"
    try:
        return parse_document(text, document_kind(source.format, content_type, text)), None, None
    except ExtractionError as exc:
        return None, None, f"parse: {exc}"


def extract_page(source: Source, url: str, role: str, headers: Headers, body: bytes, *, status: int = 200,
                 rendered: bool = False) -> PageResult:
    """Apply ``source``'s rules for ``role`` (listing | detail) to one archived page."""
    doc, challenge, problem = decode_page(source, status, headers, body, rendered)
    result = PageResult(role, challenge=challenge, problem=problem)
    if doc is None:
        return result
    try:
        if role == "listing":
            result.items = listing_items(source, doc, url, status, headers, body)
        else:
            result.fields, result.attachments = detail_fields(source, doc, url)
            result.text = page_text(doc)
    except ExtractionError as exc:
        result.problem = f"parse: {exc}"
    return result


def listing_items(source: Source, doc: Node, url: str, status: int = 200, headers: Headers = (),
                  body: bytes = b"") -> list[dict[str, Any]]:
    rules = source.items or FEED_ITEMS
    found = extract_items(doc, rules, url)
    if source.hook:
        found = _run_hook(source, url, status, headers, body, found)
    out = []
    for position, fields in enumerate(found):
        key = normalise_key(fields.get(rules.key), rules.key_params_drop)
        if key:
            out.append({"key": key, "fields": fields, "position": position})
    return out


def detail_fields(source: Source, doc: Node, url: str) -> tuple[dict[str, Any], list[str]]:
    detail = source.detail
    if detail is None:
        return {}, []
    extra = extract_fields(doc, detail.fields, url)
    if detail.table and hasattr(doc, "css"):
        table = detail.table
        found = label_table(doc, table.rows, table.label, table.value, table.labels)  # type: ignore[arg-type]
        extra.update({k: convert(v, table.types.get(k, "text"), url) for k, v in found.items()})
    links: list[str] = []
    if detail.attachments is not None:
        rules = detail.attachments
        hrefs = apply_rule(doc, rules.selector.model_copy(update={"type": "url", "many": True}), url)
        wanted = tuple(f".{ext.lower()}" for ext in rules.extensions)
        links = sorted({h for h in hrefs if urlsplit(h).path.lower().endswith(wanted)})
    return {k: v for k, v in extra.items() if v is not None}, links


def _run_hook(source: Source, url: str, status: int, headers: Headers, body: bytes,
              found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Source hooks take a Scrapy response; building one needs no reactor."""
    from scrapy.http import TextResponse

    from crawlers.spiders.listing import load_hook

    hook = load_hook(str(source.hook))
    response = TextResponse(url=url, status=status, headers=header_dict(headers), body=body)
    return hook(response, found, source)
