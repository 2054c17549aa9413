"""A source file proposed from one listing page: find the repeated item blocks, their fields, the paging.

The way list-page extractors such as GerapyAutoExtractor work: among sibling groups of elements with the
same tag and class, the list is the group with many members that each carry a link with title-like text
and (usually) a date, outside navigation. Each candidate group is scored by its size, how many members hold
a link, how long their link texts are (menus have short ones), how many carry a date, and how alike the
members are. The best group gives the item selector (the shortest CSS selector that selects exactly its
members); its members give the title, link and date rules; links and page counts elsewhere on the page
give the pagination. JSON pages: the largest array of objects with a URL-like field. Feeds: ``format: feed``.

:func:`propose` returns a :class:`Proposal` (the source as a dict, ready to dump as YAML, and notes);
:func:`crawlers.extractor.extract_page` then shows what it extracts.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import lxml.html
from lxml.etree import _Element

DATE = re.compile(r"(?<!\d)(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?(?!\d)"
                  r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+(?:19|20)\d{2}"
                  r"|(?<!\d)\d{1,2}/\d{1,2}/(?:19|20)\d{2}(?!\d)")
NAV = re.compile(r"nav|menu|footer|header|breadcrumb|crumb|sidebar|banner|pager|pagination|page-?bar|tab",
                 re.IGNORECASE)
NEXT_TEXT = ("下一页", "下页", "next", "next page", "next »", "›", "»", ">", "后页")
MIN_ITEMS = 3


@dataclass
class Proposal:
    source: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    score: float = 0.0


def _classes(el: _Element) -> list[str]:
    # generated class names (``js-view-dom-id-b0379ce5…``) change between page views: never select on them
    return sorted(c for c in (el.get("class") or "").split()
                  if re.fullmatch(r"[A-Za-z_][\w-]*", c) and len(c) <= 30 and not re.search(r"[0-9a-f]{8}", c))


def _signature(el: _Element) -> tuple[str, tuple[str, ...]]:
    return str(el.tag), tuple(_classes(el))


def _text(el: _Element) -> str:
    return " ".join(el.text_content().split())


def _links(el: _Element) -> list[_Element]:
    return [a for a in el.iter("a") if (a.get("href") or "").strip() and not
            (a.get("href") or "").strip().lower().startswith(("javascript:", "#", "mailto:"))]


def _in_nav(el: _Element) -> bool:
    for node in [el, *el.iterancestors()]:
        if node.tag in ("nav", "header", "footer"):
            return True
        ident = " ".join([node.get("id") or "", node.get("class") or ""])
        if ident and NAV.search(ident):
            return True
    return False


def _title_link(item: _Element) -> _Element | None:
    links = _links(item)
    return max(links, key=lambda a: len(a.get("title") or "") + len(_text(a))) if links else None


def _score(group: list[_Element]) -> float:
    with_link = [el for el in group if _title_link(el) is not None]
    if len(with_link) < MIN_ITEMS:
        return 0.0
    title_lengths = [len(_text(_title_link(el)) or (_title_link(el).get("title") or "")) for el in with_link]  # type: ignore[union-attr]
    average = sum(title_lengths) / len(title_lengths)
    dated = sum(1 for el in group if DATE.search(_text(el))) / len(group)
    link_share = len(with_link) / len(group)
    shapes: dict[tuple[Any, ...], int] = defaultdict(int)
    for el in group:
        shapes[tuple(child.tag for child in el)] += 1
    alike = max(shapes.values()) / len(group)
    score = len(with_link) * link_share * min(1.0, average / 12) * (1 + 2 * dated) * (0.5 + alike / 2)
    return score * (0.2 if _in_nav(group[0]) else 1.0)


def candidate_groups(root: _Element) -> list[tuple[float, list[_Element]]]:
    """Sibling groups (same tag and classes) of at least three members, best first."""
    found: list[tuple[float, list[_Element]]] = []
    for parent in root.iter():
        if not isinstance(parent.tag, str):
            continue
        groups: dict[tuple[str, tuple[str, ...]], list[_Element]] = defaultdict(list)
        for child in parent:
            if isinstance(child.tag, str) and child.tag not in ("script", "style", "br", "option", "a"):
                if child.tag == "tr" and child.find("td") is None:
                    continue   # a header row: not an item
                groups[_signature(child)].append(child)
        for members in groups.values():
            if len(members) >= MIN_ITEMS:
                score = _score(members)
                if score > 0:
                    found.append((score, members))
    return sorted(found, key=lambda pair: -pair[0])


def _step(el: _Element) -> str:
    ident = el.get("id")
    if ident and re.fullmatch(r"[A-Za-z][\w-]*", ident):
        return f"{el.tag}#{ident}"
    classes = _classes(el)
    return str(el.tag) + "".join(f".{c}" for c in classes[:2])


def item_selector(root: _Element, group: list[_Element]) -> str | None:
    """The shortest CSS selector (parent chain > item) that selects exactly the group's members."""
    wanted = set(group)
    item = _step(group[0])
    if item == group[0].tag and group[0].tag == "tr":
        item = "tr:has(td)"
    chain: list[str] = []
    parent = group[0].getparent()
    for _ in range(6):
        if parent is None or not isinstance(parent.tag, str):
            break
        chain.insert(0, _step(parent))
        for size in range(1, len(chain) + 1):
            selector = " ".join([*chain[len(chain) - size:-1], f"{chain[-1]} > {item}"])
            try:
                chosen = set(root.cssselect(selector.replace(":has(td)", "")))
            except Exception:
                continue
            if ":has(td)" in selector:
                chosen = {el for el in chosen if el.find("td") is not None}
            if chosen == wanted:
                return selector
        parent = parent.getparent()
    return None


def _relative(item: _Element, target: _Element) -> str:
    """A CSS selector for ``target`` inside ``item`` whose first match is ``target``."""
    for candidate in (str(target.tag), _step(target)):
        try:
            first = item.cssselect(candidate)
        except Exception:
            continue
        if first and first[0] is target:
            return candidate
    return str(target.tag)


def item_fields(group: list[_Element]) -> tuple[dict[str, Any], list[str]]:
    notes = []
    sample = next(el for el in group if _title_link(el) is not None)
    link = _title_link(sample)
    assert link is not None
    where = _relative(sample, link)
    anchors = [a for el in group if (a := _title_link(el)) is not None]
    titled = sum(1 for a in anchors if len(a.get("title") or "") >= len(_text(a)) > 0)
    cut = sum(1 for a in anchors if len(a.get("title") or "") > len(_text(a)))
    if cut and titled >= 0.8 * len(anchors):
        title: Any = f"{where}::attr(title)"
        notes.append("titles from the link's title attribute (the link text is shortened)")
    else:
        title = {"css": where, "type": "text"}
    fields: dict[str, Any] = {"title": title, "url": {"css": f"{where}::attr(href)", "type": "url"}}
    date_rule = _date_rule(group)
    if date_rule is not None:
        fields["date"] = date_rule
    else:
        notes.append("no date found in the items")
    return fields, notes


def _date_rule(group: list[_Element]) -> dict[str, Any] | None:
    sample = next((el for el in group if DATE.search(_text(el))), None)
    if sample is None:
        return None
    for el in sample.iter():
        if not isinstance(el.tag, str) or el is sample or el.tag == "a":
            continue
        text = _text(el)
        if DATE.fullmatch(text.strip("[]()【】 ")):
            css = _relative(sample, el)
            ok = sum(1 for item in group if (found := item.cssselect(css)) and DATE.search(_text(found[0])))
            if ok >= len([i for i in group if DATE.search(_text(i))]):
                return {"css": css, "type": "date"}
    return {"regex": f"({DATE.pattern})", "type": "date"}


def pagination(root: _Element, url: str, text: str) -> dict[str, Any]:
    """The listing's paging as a source's pagination section (``none`` when nothing says more pages)."""
    name = urlsplit(url).path.rsplit("/", 1)[-1] or "index.html"
    stem, dot, ext = name.partition(".")
    total = re.search(r"共\s*(\d+)\s*页", text)
    script_total = re.search(r"createPageHTML\(\s*['\"]?(\d+)", text)
    numbered = re.compile(rf"(?:^|/){re.escape(stem)}_(\d+)\.{re.escape(ext or 'html')}$") if dot else None
    hrefs = [a.get("href") or "" for a in root.iter("a")]
    numbers = sorted({int(m.group(1)) for h in hrefs if numbered and (m := numbered.search(h.split("?")[0]))})
    if numbered and (numbers or script_total):
        out: dict[str, Any] = {"kind": "template", "template": f"{stem}_{{n}}.{ext}",
                               "first": min(numbers) if numbers else 1}
        if script_total:
            out["total"] = {"regex": r"createPageHTML\(\s*['\"]?(\d+)", "type": "int"}
        elif total:
            out["total"] = {"regex": r"共\s*(\d+)\s*页", "type": "int"}
        return out
    for a in root.iter("a"):
        label = _text(a).lower()
        if label in NEXT_TEXT and (a.get("href") or "").strip() and not a.get("href", "").startswith("javascript"):
            shown = _text(a)
            return {"kind": "next_link", "next": {"xpath": f"//a[normalize-space(.)='{shown}']/@href"}}
    params = [dict(parse_qsl(urlsplit(h).query)) for h in hrefs]
    for key in ("page", "pageNo", "pageNum", "pageIndex", "p", "pn", "currentPage"):
        if sum(1 for p in params if key in p and p[key].isdigit()) >= 2:
            return {"kind": "param", "param": key, "first": 1}
    return {"kind": "none"}


def propose_html(url: str, text: str) -> Proposal | None:
    root = lxml.html.fromstring(text or "<html></html>")
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    for score, group in candidate_groups(root)[:8]:
        selector = item_selector(root, group)
        if selector is None:
            continue
        fields, notes = item_fields(group)
        source: dict[str, Any] = {"items": {"selector": selector, "key": "url", "fields": fields}}
        paging = pagination(lxml.html.fromstring(text), url, text)
        if paging["kind"] != "none":
            source["pagination"] = paging
        return Proposal(source, [f"{len(group)} items in {selector} (score {score:.1f})", *notes], score)
    return None


def _arrays(data: Any, path: str = "$") -> list[tuple[str, list[dict[str, Any]]]]:
    found = []
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        found.append((path, data))
    if isinstance(data, dict):
        for key, value in data.items():
            if re.fullmatch(r"[A-Za-z_]\w*", str(key)):
                found += _arrays(value, f"{path}.{key}")
    return found


def propose_json(url: str, data: Any) -> Proposal | None:
    def pick(row: dict[str, Any], names: tuple[str, ...]) -> str | None:
        lowered = {k.lower(): k for k in row}
        return next((lowered[n] for n in names if n in lowered), None)

    for path, rows in sorted(_arrays(data), key=lambda pair: -len(pair[1])):
        row = rows[0]
        url_key = pick(row, ("url", "link", "href", "detailurl", "permalink", "linkurl"))
        title_key = pick(row, ("title", "name", "subject", "headline"))
        if not url_key or not title_key:
            continue
        fields: dict[str, Any] = {"title": {"jsonpath": f"$.{title_key}"},
                                  "url": {"jsonpath": f"$.{url_key}", "type": "url"}}
        date_key = pick(row, ("start_date", "date", "published", "publishdate", "pubdate", "time", "createtime",
                              "releasedate", "created"))
        if date_key:
            fields["date"] = {"jsonpath": f"$.{date_key}", "type": "date"}
        source: dict[str, Any] = {"format": "json",
                                  "items": {"selector": {"jsonpath": f"{path}[*]"}, "key": "url", "fields": fields}}
        query = dict(parse_qsl(urlsplit(url).query))
        page_key = next((k for k in ("page", "pageNo", "pageNum", "p") if k in query), None)
        if page_key:
            source["pagination"] = {"kind": "param", "param": page_key, "first": int(query[page_key] or 1)}
        return Proposal(source, [f"{len(rows)} items at {path}[*]"], float(len(rows)))
    return _json_fragment(url, data)


def _json_fragment(url: str, data: Any) -> Proposal | None:
    """JSON carrying the list as an HTML fragment (``{"html": "<ul>…</ul>"}``): ``items.fragment``."""
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if isinstance(value, str) and "<a" in value and re.fullmatch(r"[A-Za-z_]\w*", str(key)):
            found = propose_html(url, f"<html><body>{value}</body></html>")
            if found is not None:
                found.source = {"format": "json", **found.source}
                found.source["items"] = {"fragment": f"$.{key}", **found.source["items"]}
                query = dict(parse_qsl(urlsplit(url).query))
                page_key = next((k for k in ("page", "pageNo", "pageNum", "p") if k in query), None)
                if page_key:
                    found.source["pagination"] = {"kind": "param", "param": page_key,
                                                  "first": int(query[page_key] or 1)}
                found.notes.append(f"the list is HTML inside the JSON field {key!r}")
                return found
    return None


def propose(url: str, text: str, content_type: str = "") -> Proposal | None:
    """A proposed source (without id/name/start_urls) for the page at ``url``, or None when no list is seen."""
    head = text.lstrip()[:500].lower()
    if ("xml" in content_type or head.startswith("<?xml")) and ("<rss" in text[:2000].lower() or "<feed" in head):
        return Proposal({"format": "feed"}, ["an RSS/Atom feed: the built-in feed rules apply"], 1.0)
    if "json" in content_type or head.startswith(("{", "[")):
        try:
            return propose_json(url, json.loads(text))
        except ValueError:
            pass
    return propose_html(url, text)
