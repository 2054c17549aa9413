"""Pure extraction: source rules applied to a parsed page (HTML/XML selector or JSON data)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from dateutil import parser as dateparser
from jsonpath_ng.ext import parse as jsonpath_parse
from parsel import Selector

from crawlers.sources import Items, Rule

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

_CN_DATE = re.compile(r"(\d{4})\s*[年/.-]\s*(\d{1,2})\s*[月/.-]\s*(\d{1,2})\s*日?")
_SPACE = re.compile(r"\s+")


class ExtractionError(ValueError):
    """A rule could not be applied (wrong kind of selector for the page, bad JSONPath…)."""


def parse_document(text: str, kind: str) -> Node:
    """``kind`` is html, xml or json. Feeds are parsed as XML with namespaces removed."""
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExtractionError(f"the page is not valid JSON: {exc}") from None
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
        return str(node.get()) if keep_html else str(node.xpath("string()").get() or "")
    if node is None:
        return ""
    if isinstance(node, dict | list):
        return json.dumps(node, ensure_ascii=False)
    return str(node)


def apply_rule(node: Node, rule: Rule, base_url: str) -> Any:
    values = []
    for found in select(node, rule):
        text = node_text(found, keep_html=rule.type == "html")
        if rule.regex is not None:
            match = re.search(rule.regex, text)
            if not match:
                continue
            text = match.group(1) if match.groups() else match.group(0)
        value = convert(text, rule.type, base_url)
        if value not in (None, ""):
            values.append(value)
        if values and not rule.many:
            break
    if rule.many:
        return values
    return values[0] if values else rule.default


def convert(text: str, kind: str, base_url: str) -> Any:
    if kind == "html":
        return text.strip()
    text = _SPACE.sub(" ", text).strip()
    if not text:
        return None
    if kind == "url":
        return urljoin(base_url, text)
    if kind == "date":
        return iso_date(text)
    if kind == "int":
        digits = re.search(r"-?\d+", text.replace(",", ""))
        return int(digits.group(0)) if digits else None
    return text


def iso_date(text: str) -> str | None:
    """Dates as ISO 8601: ``2026年4月15日`` → ``2026-04-15``; times keep their offset."""
    match = _CN_DATE.search(text)
    if match and not re.search(r"\d{1,2}:\d{2}", text):
        year, month, day = (int(g) for g in match.groups())
        try:
            return datetime(year, month, day).date().isoformat()
        except ValueError:
            return None
    try:
        parsed = dateparser.parse(text, fuzzy=True)
    except (ValueError, OverflowError):
        return None
    has_time = bool(re.search(r"\d{1,2}:\d{2}", text))
    return parsed.isoformat() if has_time else parsed.date().isoformat()


def extract_items(doc: Node, items: Items, base_url: str) -> list[dict[str, Any]]:
    """Apply ``items`` to a parsed page; returns one dict of fields per item node."""
    if items.fragment is not None:
        fragments = [node_text(v) for v in select(doc, Rule(jsonpath=items.fragment))]
        doc = Selector(text="".join(fragments) or "<html></html>", type="html")
    return [
        {name: apply_rule(node, rule, base_url) for name, rule in items.fields.items()}
        for node in select(doc, items.selector)
    ]


def extract_fields(doc: Node, fields: dict[str, Rule], base_url: str) -> dict[str, Any]:
    return {name: apply_rule(doc, rule, base_url) for name, rule in fields.items()}


def label_table(doc: Selector, rows: str, label: str, value: str, labels: dict[str, str]) -> dict[str, str]:
    """Map label/value rows (主办单位 → organizer) to fields; labels match ignoring spaces and colons."""
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
    return re.sub(r"[\s:：]+", "", text)


def outlinks(doc: Node, base_url: str) -> list[str]:
    if not isinstance(doc, Selector):
        return []
    links = {urljoin(base_url, href.strip()) for href in doc.xpath("//a/@href").getall()}
    return sorted(link for link in links if link.startswith(("http://", "https://")))


def normalise_key(value: Any, drop_params: list[str]) -> str:
    """A stable item key: URLs lose fragments and tracking parameters; other values are trimmed."""
    text = str(value).strip() if value is not None else ""
    if not text.startswith(("http://", "https://")):
        return text
    parts = urlsplit(text)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop_params]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), ""))
