"""Field-by-field diffs with the changed words marked (``<del>`` in the old value, ``<ins>`` in the new).

Words are runs of letters/digits; Chinese, Japanese and Korean text has no spaces, so each of its characters
is a word of its own (marking 北京 → 上海 marks two characters, not the whole sentence).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from markupsafe import Markup, escape

TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]|\w+|\s+|[^\w\s]", re.UNICODE)


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def mark(old: Any, new: Any) -> tuple[Markup, Markup]:
    """(old, new) as HTML: words only in the old value wrapped in ``<del>``, only in the new in ``<ins>``."""
    a, b = tokens(text_of(old)), tokens(text_of(new))
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        gone, came = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(gone)
            right.append(came)
            continue
        if gone:
            left.append(Markup("<del>{}</del>").format(gone))
        if came:
            right.append(Markup("<ins>{}</ins>").format(came))
    return Markup("").join(left), Markup("").join(right)


def field_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each field whose value differs: name, old and new (raw), and both marked."""
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        marked_old, marked_new = mark(old, new)
        out.append({"field": name, "old": old, "new": new, "old_html": marked_old, "new_html": marked_new})
    return out


def event_diffs(changes: dict[str, Any]) -> list[dict[str, Any]]:
    """An event's ``changes`` (field → [old, new]) as marked diffs."""
    pairs = {k: v for k, v in (changes or {}).items() if isinstance(v, list | tuple) and len(v) == 2}
    return field_diffs({k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()})
