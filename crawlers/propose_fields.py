"""The fields of a proposed source's items: title, link and date rules read off the chosen item group.

Used by :mod:`crawlers.propose` once it has picked the repeated blocks of a listing page. The title is the
item's main link text unless the page says otherwise (a longer ``title`` attribute, a heading inside a
link that wraps the whole card, or the same word — "Agenda", "Details" — on every item's link, in which
case the text that differs from item to item is the title).
"""

from __future__ import annotations

import re
from typing import Any

from lxml.etree import _Element

DATE = re.compile(r"(?<!\d)(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?(?!\d)"
                  r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+(?:19|20)\d{2}"
                  r"|(?<!\d)\d{1,2}/\d{1,2}/(?:19|20)\d{2}(?!\d)")

def classes(el: _Element) -> list[str]:
    # generated class names (``js-view-dom-id-b0379ce5…``) change between page views: never select on them
    return sorted(c for c in (el.get("class") or "").split()
                  if re.fullmatch(r"[A-Za-z_][\w-]*", c) and len(c) <= 30 and not re.search(r"[0-9a-f]{8}", c))


def text_of(el: _Element) -> str:
    return " ".join(el.text_content().split())


def links(el: _Element) -> list[_Element]:
    return [a for a in el.iter("a") if (a.get("href") or "").strip() and not
            (a.get("href") or "").strip().lower().startswith(("javascript:", "#", "mailto:"))]


def title_link(item: _Element) -> _Element | None:
    found = links(item)
    return max(found, key=lambda a: len(a.get("title") or "") + len(text_of(a))) if found else None


def step(el: _Element) -> str:
    ident = el.get("id")
    if ident and re.fullmatch(r"[A-Za-z][\w-]*", ident):
        return f"{el.tag}#{ident}"
    names = classes(el)
    return str(el.tag) + "".join(f".{c}" for c in names[:2])


def _relative(item: _Element, target: _Element) -> str:
    """A CSS selector for ``target`` inside ``item`` whose first match is ``target``."""
    for candidate in (str(target.tag), step(target)):
        try:
            first = item.cssselect(candidate)
        except Exception:
            continue
        if first and first[0] is target:
            return candidate
    return str(target.tag)


def item_fields(group: list[_Element]) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    sample = next(el for el in group if title_link(el) is not None)
    link = title_link(sample)
    assert link is not None
    if link is sample:   # the items are the links themselves
        return _self_link_fields(group), notes
    where = _relative(sample, link)
    anchors = [a for el in group if (a := title_link(el)) is not None]
    titled = sum(1 for a in anchors if len(a.get("title") or "") >= len(text_of(a)) > 0)
    cut = sum(1 for a in anchors if len(a.get("title") or "") > len(text_of(a)))
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


def _self_link_fields(group: list[_Element]) -> dict[str, Any]:
    fields: dict[str, Any] = {"title": {"xpath": ".", "type": "text"}, "url": {"xpath": "@href", "type": "url"}}
    if sum(1 for a in group if DATE.search(text_of(a))) >= 0.8 * len(group):
        fields["date"] = {"regex": f"({DATE.pattern})", "type": "date"}
    return fields


def _date_rule(group: list[_Element]) -> dict[str, Any] | None:
    sample = next((el for el in group if DATE.search(text_of(el))), None)
    if sample is None:
        return None
    for el in sample.iter():
        if not isinstance(el.tag, str) or el is sample or el.tag == "a":
            continue
        text = text_of(el)
        if DATE.fullmatch(text.strip("[]()【】 ")):
            css = _relative(sample, el)
            ok = sum(1 for item in group if (found := item.cssselect(css)) and DATE.search(text_of(found[0])))
            if ok >= len([i for i in group if DATE.search(text_of(i))]):
                return {"css": css, "type": "date"}
    return {"regex": f"({DATE.pattern})", "type": "date"}
