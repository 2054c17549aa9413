"""Pure extraction: source rules applied to a parsed page (HTML/XML selector or JSON data).

Text of an element is taken with ``html-text``: block elements and ``<br>`` separate words, so
``Commission<br>Status`` reads ``Commission Status``; whitespace is then collapsed. Dates go through
:mod:`crawlers.dates`, resolved against the page's capture time held in a :class:`Context`, which also
collects the problems met on the page (a partial date, an unreadable one).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import html_text
from jsonpath_ng.ext import parse as jsonpath_parse
from parsel import Selector
from w3lib.url import safe_url_string

from crawlers.bounds import MAX_ITEMS_PER_PAGE, TooDeep, load_json
from crawlers.dates import parse_date
from crawlers.keyparams import is_session_param, strip_path_session
from crawlers.sources import Items, Rule
from crawlers.urls import parses, resolve

Node = Selector | dict[str, Any] | list[Any] | str | int | float | None

FEED_ITEMS = Items(
    selector=Rule(xpath="//item | //entry"),
    fields={
        "title": Rule(xpath="./title"),
        "url": Rule(xpath="./link[not(@rel) or @rel='alternate']/@href | ./link/text()", type="url"),
        "date": Rule(xpath="./pubDate | ./published | ./updated | ./date", type="date"),
        "id": Rule(xpath="./guid | ./id"),
    },
    key="url",
)

_SPACE = re.compile(r"\s+")
_MARKUP = re.compile(r"</?[a-zA-Z][^>]*>")


class ExtractionError(ValueError):
    """A rule could not be applied (wrong kind of selector for the page, bad JSONPath…)."""


@dataclass
class Context:
    """What rules need beyond the node: the page URL, its capture time, and where problems go."""

    base_url: str
    captured_at: datetime | None = None
    problems: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if message not in self.problems and len(self.problems) < 200:
            self.problems.append(message)


def _context(base: str | Context) -> Context:
    return base if isinstance(base, Context) else Context(base)


def parse_document(text: str, kind: str) -> Node:
    """``kind`` is html, xml or json. Feeds are parsed as XML with namespaces removed."""
    if kind == "json":
        try:
            return load_json(text)  # bounded depth: a hostile nesting fails this page, cleanly
        except json.JSONDecodeError as exc:
            raise ExtractionError(f"the page is not valid JSON: {exc}") from None
        except TooDeep as exc:
            raise ExtractionError(str(exc)) from None
    selector = Selector(text=text, type="xml" if kind == "xml" else "html")
    if kind == "xml":
        selector.remove_namespaces()
    return selector


@lru_cache(maxsize=512)
def _jsonpath(expr: str) -> Any:
    try:
        return jsonpath_parse(expr)
    except Exception as exc:  # jsonpath_ng raises bare Exception subclasses on syntax errors
        raise ExtractionError(f"JSONPath {expr!r} does not parse: {exc}") from None


def select(node: Node, rule: Rule) -> list[Node]:
    """Nodes (or raw strings) a rule selects from ``node``."""
    if rule.const is not None:
        return [rule.const]
    if rule.jsonpath is not None:
        if isinstance(node, Selector):
            raise ExtractionError(f"JSONPath {rule.jsonpath!r} used on an HTML/XML page")
        return [m.value for m in _jsonpath(rule.jsonpath).find(node)]
    if rule.css is not None or rule.xpath is not None:
        if not isinstance(node, Selector):
            what = "CSS" if rule.css is not None else "XPath"
            raise ExtractionError(f"{what} rule used on JSON data; use jsonpath")
        return list(node.css(rule.css) if rule.css is not None else node.xpath(str(rule.xpath)))
    return [node]  # regex alone: applies to the node's own text


def node_text(node: Node, keep_html: bool = False) -> str:
    if isinstance(node, Selector):
        if isinstance(node.root, str):
            return node.root
        if keep_html:
            return str(node.get())
        if getattr(node.root, "tag", None) is None or not isinstance(node.root.tag, str):
            return str(node.xpath("string()").get() or "")  # comments, processing instructions
        return str(html_text.selector_to_text(node, guess_punct_space=False, guess_layout=False))
    if node is None:
        return ""
    if isinstance(node, dict | list):
        return json.dumps(node, ensure_ascii=False)
    return str(node)


def json_string_text(text: str) -> str:
    """A JSON string meant as text may hold rendered HTML (``Rescheduled &#8211; Board``, ``<p>…</p>``)."""
    if "<" in text and _MARKUP.search(text):
        return str(html_text.extract_text(text, guess_punct_space=False, guess_layout=False))
    return html.unescape(text) if "&" in text else text


def apply_rule(node: Node, rule: Rule, base: str | Context) -> Any:
    ctx = _context(base)
    values = []
    for found in select(node, rule):
        text = node_text(found, keep_html=rule.type == "html")
        if rule.type == "text" and rule.jsonpath is not None and isinstance(found, str):
            text = json_string_text(text)
        if rule.regex is not None:
            match = re.search(rule.regex, text)
            if not match:
                continue
            text = match.group(1) if match.groups() else match.group(0)
        value = convert(text, rule.type, ctx, rule.missing_year)
        if value not in (None, ""):
            values.append(value)
        if values and not rule.many:
            break
    if rule.many:
        return values
    return values[0] if values else rule.default


def convert(text: str, kind: str, base: str | Context, missing_year: str = "partial") -> Any:
    ctx = _context(base)
    if kind == "html":
        return text.strip()
    text = _SPACE.sub(" ", text).strip()
    if not text:
        return None
    if kind == "url":  # spaces and non-ASCII percent-encoded as a browser sends them (%20, UTF-8)
        url = resolve(ctx.base_url, text)  # None for a malformed href: that field only, never the page
        if url is None:
            ctx.note(f"url: {text[:100]!r} is not a valid URL")
            return None
        return _browser_url(url)
    if kind == "date":
        parsed = parse_date(text, ctx.captured_at, missing_year)
        if parsed.problem:
            ctx.note(f"date: {parsed.problem}")
        return parsed.value
    if kind == "int":
        digits = re.search(r"-?\d+", text.replace(",", ""))
        return int(digits.group(0)) if digits else None
    return text


def iso_date(text: str, captured_at: datetime | None = None) -> str | None:
    """Dates as ISO 8601: ``2026年4月15日`` → ``2026-04-15``; times keep their offset."""
    return parse_date(text, captured_at or datetime.now(UTC)).value


def extract_items(doc: Node, items: Items, base: str | Context) -> list[dict[str, Any]]:
    """Apply ``items`` to a parsed page; returns one dict of fields per item node."""
    ctx = _context(base)
    if items.fragment is not None:
        fragments = [node_text(v) for v in select(doc, Rule(jsonpath=items.fragment))]
        doc = Selector(text="".join(fragments) or "<html></html>", type="html")
    nodes = select(doc, items.selector)
    if len(nodes) > MAX_ITEMS_PER_PAGE:
        raise ExtractionError(f"the item selector matched {len(nodes):,} nodes, more than the {MAX_ITEMS_PER_PAGE:,} "
                              "a listing page may hold: the page is not read (a trap, or a selector matching far "
                              "too much)")
    return [{name: apply_rule(node, rule, ctx) for name, rule in items.fields.items()} for node in nodes]


def extract_fields(doc: Node, fields: dict[str, Rule], base: str | Context) -> dict[str, Any]:
    ctx = _context(base)
    return {name: apply_rule(doc, rule, ctx) for name, rule in fields.items()}


def label_table(doc: Selector, rows: str, label: str, value: str, labels: dict[str, str]) -> dict[str, str]:
    """Map label/value rows (主办单位 → organizer) to fields.

    A label cell matches a configured label when both are equal after taking the cell's text (``<br>``
    and blocks become spaces), dropping all whitespace and colons (``:``/``：``) and ignoring case:
    ``<th>Commission<br>Status:</th>`` matches ``commission status``.
    """
    wanted = {_label_key(k): v for k, v in labels.items()}
    found: dict[str, str] = {}
    for row in doc.css(rows):
        label_node = row.css(label)
        value_node = row.css(value)
        if not label_node or not value_node:
            continue
        name = wanted.get(_label_key(node_text(label_node[0])))
        if name and name not in found:
            found[name] = _SPACE.sub(" ", node_text(value_node[-1])).strip()
    return found


def _label_key(text: str) -> str:
    return re.sub(r"[\s:：]+", "", text).casefold()


def outlinks(doc: Node, base_url: str) -> list[str]:
    if not isinstance(doc, Selector):
        return []
    links = {resolve(base_url, href) for href in doc.xpath("//a/@href").getall()}
    return sorted(link for link in links if link and link.startswith(("http://", "https://")))


def canonical_key(value: Any, drop_params: list[str], site_hosts: set[str] | frozenset[str] = frozenset(), *,
                  keep_session: bool = False) -> str:
    """A programme's key that survives a site's move: a URL on one of ``site_hosts`` (the source's own
    hosts, ``www.`` ignored) becomes its path and query (``/d/1.html?id=3``); another URL loses its scheme
    and default port (``//other.gov.cn/d/1.html``); fragments, tracking and session parameters go
    (``keep_session``: not the session ones, see ``crawlers.keyparams``); other values (ids) are trimmed."""
    text = normalise_key(value, drop_params, keep_session=keep_session)
    if not text.startswith(("http://", "https://")):
        return text
    parts = urlsplit(text)
    host = (parts.hostname or "").removeprefix("www.")
    tail = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if host in site_hosts:
        return tail
    try:
        port = parts.port if parts.port not in (None, 80, 443) else None
    except ValueError:  # a port that is not a number: keep the URL as it was written
        return text
    return f"//{host}{':' + str(port) if port else ''}{tail}"


@lru_cache(maxsize=4096)   # a listing item's link comes here twice (its field, then its key): w3lib's work once
def _browser_url(url: str) -> str:
    try:
        return safe_url_string(url)
    except ValueError:
        return url


def normalise_key(value: Any, drop_params: list[str], *, keep_session: bool = False) -> str:
    """A stable item key: URLs lose fragments, tracking and session parameters; other values are trimmed."""
    text = str(value).strip() if value is not None else ""
    if not text[:8].lower().startswith(("http://", "https://")):
        return text
    if not parses(text):
        return ""  # not a usable URL: the item has no key (reported), its neighbours are unaffected
    parts = urlsplit(_browser_url(text))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in drop_params and (keep_session or not is_session_param(k))]
    path = parts.path if keep_session else strip_path_session(parts.path)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path or "/", urlencode(query), ""))
