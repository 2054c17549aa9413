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
                  r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}"
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
    better = _title_elsewhere(group, anchors)
    if better is not None:
        title, why = better
        notes.append(why)
    fields: dict[str, Any] = {"title": title, "url": {"css": f"{where}::attr(href)", "type": "url"}}
    date_rule = _date_rule(group)
    if date_rule is not None:
        fields["date"] = date_rule
    else:
        notes.append("no date found in the items")
    return fields, notes


HEADING = ("h1", "h2", "h3", "h4", "h5", "h6")
SEPARATORS = r"^\s*(.*?)[\s|:\u2013\u2014-]*$"   # "October 1, 2019 — Agenda | Minutes": the text before the links


def _title_elsewhere(group: list[_Element], anchors: list[_Element]) -> tuple[dict[str, Any], str] | None:
    """A better title rule than the link's text, when the page shows one.

    - every item's link reads the same ("Agenda", "Details"): that is a label, the title is the text that
      differs from item to item — a heading, else the first element outside the link, else the item's own
      text before its links;
    - the link's text is the item's heading with more words (a whole card inside the link, or "Details:
      <heading> on <date>"): the heading.
    """
    texts = [text_of(a) for a in anchors]
    label = max(set(texts), key=texts.count) if texts else ""
    if texts.count(label) >= max(2, len(texts) / 2):
        for allowed in (_is_heading, _outside_links):
            css = _varying_element(group, allowed)
            if css is not None:
                return {"css": css, "type": "text"}, f"titles from {css} (every item's link reads {label!r})"
        if _own_text_varies(group):
            return ({"xpath": "./text()[normalize-space()][1]", "regex": SEPARATORS, "type": "text"},
                    f"titles from the items' own text (every item's link reads {label!r})")
        return None
    css = _varying_element(group, lambda el: el.tag in HEADING, distinct=0.2)
    if css is not None and _heading_within_link(group, css):
        return {"css": css, "type": "text"}, f"titles from the heading {css} (each link repeats it with more)"
    return None


def _heading_within_link(group: list[_Element], css: str) -> bool:
    """The item's heading is what its link says, plus more (a card's "Details: Book Babies on Tuesday")."""
    ok = 0
    for item in group:
        heading, link = item.cssselect(css), title_link(item)
        if heading and link is not None and text_of(heading[0]) in text_of(link) != text_of(heading[0]):
            ok += 1
    return ok >= 0.8 * len(group)


def _is_heading(el: _Element) -> bool:
    return el.tag in HEADING or any(("title" in c.lower() or c.lower() == "name") for c in classes(el))


def _outside_links(el: _Element) -> bool:
    return el.tag != "a" and not any(x.tag == "a" for x in el.iterancestors()) and not links(el)


def _varying_element(group: list[_Element], allowed: Any, distinct: float = 0.5) -> str | None:
    """A CSS rule for the first element (in page order) that ``allowed`` accepts whose text is present on
    (nearly) every item and varies (a ``distinct`` share of different texts: recurring events repeat)."""
    for sample in group[:3]:
        for el in sample.iter():
            if not isinstance(el.tag, str) or el is sample or not allowed(el) or not text_of(el):
                continue
            css = _relative(sample, el)
            try:
                found = [text_of(hit[0]) for item in group if (hit := item.cssselect(css))]
            except Exception:
                continue
            present = [t for t in found if t]
            if len(present) >= 0.8 * len(group) and len(set(present)) >= max(2, distinct * len(present)):
                return css
    return None


def _own_text_varies(group: list[_Element]) -> bool:
    found = [" ".join(t.split()) for el in group if (t := next((x for x in el.xpath("./text()") if x.strip()), ""))]
    return len(found) >= 0.8 * len(group) and len(set(found)) >= max(2, 0.5 * len(found))


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
