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

from crawlers.propose_calendar import calendar_events
from crawlers.propose_fields import DATE, item_fields
from crawlers.propose_fields import classes as _classes
from crawlers.propose_fields import step as _step
from crawlers.propose_fields import text_of as _text
from crawlers.propose_fields import title_link as _title_link

NAV = re.compile(r"nav|menu|footer|header|breadcrumb|crumb|sidebar|banner|pager|pagination|page-?bar|tab(?!le)",
                 re.IGNORECASE)
NEXT_TEXT = ("下一页", "下页", "next", "next page", "next »", "›", "»", ">", "后页")
MIN_ITEMS = 3


@dataclass
class Proposal:
    source: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    score: float = 0.0


def _in_nav(el: _Element) -> bool:
    for node in [el, *el.iterancestors()]:
        if node.tag in ("body", "html"):
            break   # the page's own classes (``one-sidebar``, ``has-header``) describe its layout, not a menu
        if node.tag in ("nav", "header", "footer"):
            return True
        ident = " ".join([node.get("id") or "", node.get("class") or ""])
        if ident and NAV.search(ident):
            return True
    return False


def _title_length(item: _Element) -> int:
    """How long the item's title looks: its link's text or title attribute, or, for an icon-only link
    (a PDF symbol), the item's own text, where the title then is."""
    link = _title_link(item)
    assert link is not None
    return len(_text(link) or link.get("title") or ("" if link is item else _text(item)))


def _score(group: list[_Element]) -> float:
    with_link = [el for el in group if _title_link(el) is not None]
    if len(with_link) < MIN_ITEMS:
        return 0.0
    title_lengths = [_title_length(el) for el in with_link]
    average = sum(title_lengths) / len(title_lengths)
    dated = sum(1 for el in group if DATE.search(_text(el))) / len(group)
    link_share = len(with_link) / len(group)
    shapes: dict[tuple[Any, ...], int] = defaultdict(int)
    for el in group:
        shapes[tuple(child.tag for child in el)] += 1
    alike = max(shapes.values()) / len(group)
    score = len(with_link) * link_share * min(1.0, average / 12) * (1 + 2 * dated) * (0.5 + alike / 2)
    return score * (0.2 if _in_nav(group[0]) else 1.0)


def _template_classes(el: _Element, rare: set[str]) -> tuple[str, ...]:
    kept = tuple(c for c in _classes(el) if c not in rare)
    return kept or tuple(_classes(el))   # only rare classes: a block of its own kind, not a list member


def candidate_groups(root: _Element) -> list[tuple[float, list[_Element]]]:
    """Sibling groups (same tag and classes) of at least three members, best first.

    A class fewer than half the siblings carry (``post-1275``, ``category-news``, ``active``) is left out of
    the comparison when the element has a commoner one (``post``): blog templates tag each post with its
    number and categories, and that must not split the list into small groups.
    Links directly inside a container (``<p><a>…</a><br><a>…</a></p>``) form groups too.
    """
    found: list[tuple[float, list[_Element]]] = []
    for parent in root.iter():
        if not isinstance(parent.tag, str):
            continue
        children = [c for c in parent if isinstance(c.tag, str) and c.tag not in ("script", "style", "br", "option")
                    and not (c.tag == "tr" and c.find("td") is None)   # a header row: not an item
                    and not (c.tag == "a" and not _text(c))]   # nor is an empty link (an icon, a stray <br>)
        counts: dict[str, int] = defaultdict(int)
        for child in children:
            for c in set(_classes(child)):
                counts[c] += 1
        rare = {c for c, n in counts.items() if 2 * n < len(children)} if len(children) >= MIN_ITEMS else set()
        groups: dict[tuple[str, tuple[str, ...]], list[_Element]] = defaultdict(list)
        for child in children:
            groups[(str(child.tag), _template_classes(child, rare))].append(child)
        for members in groups.values():
            if len(members) >= MIN_ITEMS:
                score = _score(members)
                if score > 0:
                    found.append((score, members))
    return sorted(found, key=lambda pair: -pair[0])


def _alike(a: _Element, b: _Element) -> bool:
    """Same tag and classes, those with digits aside (``views-row-2``, ``node-894``): the same template."""
    def shape(el: _Element) -> set[str]:
        return {c for c in _classes(el) if not re.search(r"\d", c)}
    return a.tag == b.tag and shape(a) == shape(b)


def _same_template(el: _Element, model: _Element, depth: int = 8) -> bool:
    """``el`` sits where ``model`` sits in a repeat of the same template: same shapes up to a common ancestor."""
    for a, b in zip(el.iterancestors(), model.iterancestors(), strict=False):
        if a is b:
            return True
        if not _alike(a, b) or depth == 0:
            return False
        depth -= 1
    return False


def widen(root: _Element, group: list[_Element]) -> list[_Element]:
    """The group plus members of sibling containers (a list split by year or month) that look like its own:
    same tag, a class in common, the same children, a date when the group's members carry one, and the
    same template around them up to a common ancestor."""
    shared = set(_shared_classes(group))
    chosen = set(group)
    shapes = {tuple(child.tag for child in el) for el in group}
    dated = sum(1 for el in group if DATE.search(_text(el))) >= 0.8 * len(group)
    more = [el for el in root.iter(str(group[0].tag)) if el not in chosen
            and tuple(child.tag for child in el) in shapes and (not dated or DATE.search(_text(el)))
            and (shared & set(_classes(el)) if shared else not _classes(el))
            and _title_link(el) is not None and not (el.tag == "tr" and el.find("td") is None)
            and _same_template(el, group[0]) and (not _in_nav(el) or _in_nav(group[0]))]
    per_container: dict[_Element, int] = defaultdict(int)
    for el in more:
        per_container[el.getparent()] += 1
    # a lone look-alike elsewhere is another list's item; next to the list's own containers it is one more
    near = {el.getparent().getparent() for el in group} | {el.getparent().getparent() for el in more
                                                           if per_container[el.getparent()] >= 2}
    more = [el for el in more if per_container[el.getparent()] >= 2 or el.getparent().getparent() in near]
    if not more:
        return group
    wider = set(group) | set(more)
    return [el for el in root.iter() if el in wider]


def _shared_classes(nodes: list[_Element]) -> tuple[str, ...]:
    common = set(_classes(nodes[0]))
    for node in nodes[1:]:
        common &= set(_classes(node))
    return tuple(sorted(common))


def _describe(nodes: list[_Element]) -> str | None:
    """One CSS step for these nodes: one node by its id or classes, several by their shared classes."""
    if len({n.tag for n in nodes}) != 1:
        return None
    if len(nodes) == 1:
        return _step(nodes[0])
    return str(nodes[0].tag) + "".join(f".{c}" for c in _shared_classes(nodes)[:2])


def _ancestors(group: list[_Element], level: int) -> list[_Element]:
    found: list[_Element] = []
    for el in group:
        node: _Element | None = el
        for _ in range(level):
            node = node.getparent() if node is not None else None
        if node is None or not isinstance(node.tag, str):
            return []
        if node not in found:
            found.append(node)
    return found


def item_selector(root: _Element, group: list[_Element]) -> str | None:
    """The shortest CSS selector (parent chain > item) that selects exactly the group's members; failing
    that, exactly its members among the elements holding a link (``p:has(a)``: a list of paragraphs
    among other paragraphs)."""
    item = _describe(group) if len(group) > 1 else _step(group[0])
    if item is None:
        return None
    if item == group[0].tag and group[0].tag == "tr":
        item = "tr:has(td)"
    if group[0].tag == "a" or item.endswith(":has(td)"):
        return _chain_selector(root, group, item)
    return _chain_selector(root, group, item) or _chain_selector(root, group, f"{item}:has(a)")


def _chain_selector(root: _Element, group: list[_Element], item: str) -> str | None:
    wanted = set(group)
    chain: list[str] = []
    for level in range(1, 7):
        step = _describe(_ancestors(group, level))
        if step is None:
            break
        chain.insert(0, step)
        for size in range(1, len(chain) + 1):
            selector = " ".join([*chain[len(chain) - size:-1], f"{chain[-1]} > {item}"])
            try:
                chosen = set(root.cssselect(selector))
            except Exception:
                continue
            if chosen == wanted:
                return selector
    return None


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
    events = calendar_events(root)
    if len(events) >= MIN_ITEMS and (selector := item_selector(root, events)) is not None:
        fields, notes = item_fields(events)
        return Proposal({"items": {"selector": selector, "key": "url", "fields": fields}},
                        [f"{len(events)} events in a month calendar ({selector})", *notes,
                         "a calendar shows one month: add pagination to the next months by hand"], float(len(events)))
    for score, group in candidate_groups(root)[:8]:
        group = widen(root, group)
        selector = item_selector(root, group)
        if selector is None:   # members without a link give no item: select only those with one
            group = [el for el in group if _title_link(el) is not None]
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
