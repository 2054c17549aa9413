"""The one extraction path: page bytes + headers + capture time + source + page role → items, problems.

:func:`extract_page` is pure (it fetches nothing and writes nothing) and is what both the live spider and
``listwatch programs reprocess`` call, so a page re-extracted from the archive gives exactly what the crawl
gave. Decoding is ``crawlers.encoding``'s, challenge detection ``crawlers.challenge``'s and the rules
``crawlers.extract``'s. Problems that do not stop extraction (a charset conflict, a partial date, a field
that matched nothing on most items) are returned in ``problems`` for the crawl report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import chompjs
from parsel import Selector

from crawlers.challenge import detect_challenge
from crawlers.encoding import Decoded, decode_body
from crawlers.extract import (
    FEED_ITEMS,
    Context,
    ExtractionError,
    Node,
    apply_rule,
    canonical_key,
    convert,
    extract_fields,
    extract_items,
    label_table,
    node_text,
    parse_document,
)
from crawlers.sources import Items, Rule, Source

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
_COMMENT_MARKS = re.compile(r"<!--|-->")
_SCRIPTS = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
EMPTY_FIELD_MIN_ITEMS = 4  # below this many items on a page, an empty field says little


@dataclass
class PageResult:
    """What one page yields. Listing: ``items`` (``{"key", "fields", "position"}``). Detail: ``fields``,
    ``attachments`` (``{"name", "url"}`` in page order). The page text is not extracted: it stays in its capture
    (``page_text(result.doc)`` for a caller that wants it; ~10 % of a crawl's CPU on 40 KB pages).
    ``challenge`` or ``problem`` say why nothing was extracted; ``problems`` lists what went wrong without
    stopping extraction; ``decoding`` says how the bytes were read (kept in the page's metadata record)."""

    role: str
    items: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, str]] = field(default_factory=list)
    challenge: str | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)
    decoding: dict[str, str] = field(default_factory=dict)
    found: int = 0  # item nodes the selector found (before filters): drives "page has no items" paging
    keyless: int = 0  # of those, items without a key (all of them: the layout changed, see crawlers.expect)
    doc: Node = field(default=None, repr=False, compare=False)

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
    """html, xml or json: the declared format, else the Content-Type, else a sniff."""
    if declared == "feed":
        return "xml"
    if declared in ("html", "json"):
        return declared
    lowered = content_type.lower()
    if "json" in lowered:
        return "json"
    if any(t in lowered for t in ("rss", "atom", "/xml")) or text.lstrip().startswith("<?xml"):
        return "xml"
    stripped = text.lstrip()[:1]
    return "json" if stripped in ("{", "[") and "html" not in lowered else "html"


def role_format(source: Source, role: str) -> str:
    """The format of a page of this role (see ``Detail.format``)."""
    if role == "detail" and source.detail is not None:
        if source.detail.format is not None:
            return source.detail.format
        return source.format if source.format in ("html", "auto") else "auto"
    return source.format


def listing_document(source: Source, headers: Headers, decoded: Decoded) -> Node:
    """A listing page parsed as :func:`extract_page` parses it, items left alone: what pagination reads on an
    unchanged listing page whose archived items are reused."""
    content_type = {k.lower(): v for k, v in header_dict(headers).items()}.get("content-type", "")
    return parse_document(decoded.text, document_kind(role_format(source, "listing"), content_type, decoded.text))


def page_text(doc: Node) -> str:
    if isinstance(doc, Selector):
        body = doc.xpath("//body")
        return " ".join(node_text(body[0] if body else doc).split())[:20_000]
    return ""


def decode(body: bytes, headers: Headers, source: Source, rendered: bool = False, *,
           utf8_text: str | None = None) -> Decoded:
    """``utf8_text``: the body already decoded as UTF-8 with replacement, if the caller has it (``decode_body``)."""
    if rendered:  # the rendered DOM was stored as UTF-8 text by the capture layer
        return Decoded(body.decode("utf-8", errors="replace"), "utf-8", "rendered")
    content_type = {k.lower(): v for k, v in header_dict(headers).items()}.get("content-type", "")
    return decode_body(body, content_type, source.encoding, utf8_text=utf8_text)


def extract_page(source: Source, url: str, role: str, headers: Headers, body: bytes, *, status: int = 200,
                 captured_at: datetime | None = None, rendered: bool = False,
                 decoded: Decoded | None = None) -> PageResult:
    """Apply ``source``'s rules for ``role`` (listing | detail) to one page as it was captured."""
    decoded = decoded or decode(body, headers, source, rendered)
    result = PageResult(role, decoding=decoded.metadata())
    if decoded.conflict:  # "charset-conflict" when no declaration was right: the run is then degraded
        result.problems.append(f"{'charset' if decoded.settled else 'charset-conflict'}: {decoded.conflict}")
    found_headers = header_dict(headers)
    result.challenge = detect_challenge(status, found_headers, decoded.text)
    if result.challenge is not None:
        return result
    if status >= 400:
        result.problem = f"http-{status}"
        return result
    content_type = {k.lower(): v for k, v in found_headers.items()}.get("content-type", "")
    ctx = Context(url, captured_at)
    try:
        result.doc = parse_document(decoded.text, document_kind(role_format(source, role), content_type, decoded.text))
        if role == "listing":
            _listing(source, result, ctx, url, status, found_headers, body, decoded)
        else:
            _detail(source, result, ctx)
    except ExtractionError as exc:
        result.problem = f"parse: {exc}"
    result.problems += ctx.problems
    return result


def items_document(doc: Node, rules: Items, text: str) -> Node:
    """Where the items are: the page itself, its comments' markup too, or an object literal in a script."""
    if rules.script is not None:
        return script_data(text, rules.script)
    if rules.comments and isinstance(doc, Selector):
        return Selector(text=_COMMENT_MARKS.sub("", text), type="html")
    return doc


def script_data(text: str, anchor: str) -> Any:
    """The JSON / JavaScript literal following ``anchor`` (a variable name or a regex) in an inline script."""
    pattern = re.compile(rf"\b{re.escape(anchor)}\s*=\s*" if re.fullmatch(r"[\w$.]+", anchor) else anchor)
    for script in _SCRIPTS.findall(text):
        match = pattern.search(script)
        if match is None:
            continue
        rest = script[match.end():]
        start = min((i for i in (rest.find("{"), rest.find("[")) if i >= 0), default=-1)
        if start < 0:
            continue
        try:
            return chompjs.parse_js_object(rest[start:])
        except (ValueError, TypeError) as exc:
            raise ExtractionError(f"the script value after {anchor!r} is not a JSON/JavaScript literal: {exc}") \
                from None
    raise ExtractionError(f"no inline <script> assigns {anchor!r}")


def _listing(source: Source, result: PageResult, ctx: Context, url: str, status: int, headers: dict[str, str],
             body: bytes, decoded: Decoded) -> None:
    rules = source.items or FEED_ITEMS
    found = extract_items(items_document(result.doc, rules, decoded.text), rules, ctx)
    if source.hook:
        found = run_hook(source, url, status, headers, body, found, decoded.encoding)
    result.found = len(found)
    kept = [(position, fields) for position, fields in enumerate(found) if keep(fields, rules)]
    keys = page_keys([fields.get(rules.key) for _, fields in kept], rules, site_hosts(source))
    for (position, fields), key in zip(kept, keys, strict=True):
        if key:
            result.items.append({"key": key, "fields": fields, "position": position})
        else:
            result.keyless += 1
            result.problems.append(f"item {position} has no {rules.key!r}")
    result.problems += empty_fields(found, rules)


def page_keys(values: list[Any], rules: Items, sites: set[str]) -> list[str]:
    """The keys of one listing page's items. Session parameters are dropped (``crawlers.keyparams``) unless
    that would give two different links of this page one key: then the parameter identifies them."""
    keys = [canonical_key(v, rules.key_params_drop, sites) for v in values]
    repeated = {k for k, n in Counter(keys).items() if n > 1 and k}   # usually none: the second pass is rare
    if not repeated:
        return keys
    full = {i: canonical_key(values[i], rules.key_params_drop, sites, keep_session=True)
            for i, k in enumerate(keys) if k in repeated}
    owners: dict[str, set[str]] = {}
    for i, whole in full.items():
        owners.setdefault(keys[i], set()).add(whole)
    return [full[i] if i in full and len(owners[k]) > 1 else k for i, k in enumerate(keys)]


def keep(fields: dict[str, Any], rules: Items) -> bool:
    """The ``include`` / ``exclude`` filters."""
    def matches(name: str, pattern: str) -> bool:
        value = fields.get(name)
        return value is not None and re.search(pattern, node_text(value)) is not None

    return all(matches(n, p) for n, p in rules.include.items()) and \
        not any(matches(n, p) for n, p in rules.exclude.items())


def empty_fields(found: list[dict[str, Any]], rules: Items) -> list[str]:
    """Fields that matched nothing on most of a page's items: a selector that no longer fits the page."""
    if len(found) < EMPTY_FIELD_MIN_ITEMS:
        return []
    out = []
    for name, rule in rules.fields.items():
        if rule.default is not None or rule.const is not None:
            continue
        missing = sum(1 for f in found if f.get(name) in (None, "", []))
        if missing * 2 > len(found):
            out.append(f"field {name!r} matched nothing on {missing} of {len(found)} items")
    return out


def site_hosts(source: Source) -> set[str]:
    return {host_name(u) for u in source.start_urls}


def host_name(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _detail(source: Source, result: PageResult, ctx: Context) -> None:
    detail = source.detail
    doc = result.doc
    if detail is None:
        return
    extra = extract_fields(doc, detail.fields, ctx)
    if detail.table and isinstance(doc, Selector):
        table = detail.table
        found = label_table(doc, table.rows, table.label, table.value, table.labels)
        extra.update({k: convert(v, table.types.get(k, "text"), ctx) for k, v in found.items()})
    result.fields = {k: v for k, v in extra.items() if v is not None}
    if detail.attachments is not None:
        result.attachments = attachments(doc, detail.attachments.selector, detail.attachments.extensions, ctx)


def attachments(doc: Node, selector: Rule, extensions: list[str], ctx: Context) -> list[dict[str, str]]:
    """``{"name", "url"}`` for each wanted file link, in page order, each URL once."""
    hrefs = apply_rule(doc, selector.model_copy(update={"type": "url", "many": True}), ctx)
    wanted = tuple(f".{ext.lower()}" for ext in extensions)
    chosen = {h for h in hrefs if urlsplit(h).path.lower().endswith(wanted)}
    names: dict[str, str] = {}
    if isinstance(doc, Selector):
        for anchor in doc.xpath("//a[@href]"):
            url = convert(anchor.attrib.get("href", ""), "url", ctx)
            if url in chosen and url not in names:
                names[url] = " ".join(node_text(anchor).split()) or anchor.attrib.get("title", "").strip()
    ordered = list(names) + sorted(chosen - set(names))
    return [{"name": names.get(u) or unquote(urlsplit(u).path.rsplit("/", 1)[-1]), "url": u} for u in ordered]


def run_hook(source: Source, url: str, status: int, headers: Headers, body: bytes,
             found: list[dict[str, Any]], encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Hooks take a Scrapy response (building one needs no reactor), the items and the source; the response
    decodes as this module did (not trusting a charset the bytes contradict)."""
    from scrapy.http import TextResponse

    from crawlers.hooks import load_hook

    response = TextResponse(url=url, status=status, headers=header_dict(headers), body=body, encoding=encoding)
    return load_hook(str(source.hook))(response, found, source)
