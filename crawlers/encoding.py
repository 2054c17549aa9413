"""Decode listing pages the way Chinese government sites need.

Order of evidence: the source's override, a byte-order mark, the HTTP charset, the ``<meta>``
charset, then statistical detection. A declared charset is trusted only if the body decodes under
it without errors: the common real case is a header saying ``utf-8`` over a GBK body.
GB2312 and GBK are decoded as GB18030, their superset, so rare characters survive.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030",
              "ascii": "utf-8", "iso-8859-1": "cp1252", "latin-1": "cp1252"}


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    how: str          # override | bom | http | meta | detected | fallback
    note: str = ""    # set when a declared charset was wrong


def normalise(name: str | None) -> str | None:
    if not name:
        return None
    try:
        canonical = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    return _SUPERSETS.get(canonical, canonical)


def header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else None


def _strict(body: bytes, encoding: str | None) -> str | None:
    if not encoding:
        return None
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_body(body: bytes, content_type: str | None = None, override: str | None = None) -> Decoded:
    if override:
        encoding = normalise(override) or override
        return Decoded(body.decode(encoding, errors="replace"), encoding, "override")
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom):].decode(encoding, errors="replace"), encoding, "bom")
    notes = []
    for how, declared in (("http", header_charset(content_type)), ("meta", meta_charset(body))):
        normalised = normalise(declared)
        if declared and not normalised:
            notes.append(f"{how} charset {declared!r} is unknown")
            continue
        text = _strict(body, normalised)
        if text is not None:
            return Decoded(text, str(normalised), how, "; ".join(notes))
        if normalised:
            notes.append(f"{how} charset says {declared} but the body is not valid {declared}")
    best = from_bytes(body[:200_000]).best()
    if best is not None:
        detected = normalise(best.encoding) or best.encoding
        return Decoded(body.decode(detected, errors="replace"), detected, "detected", "; ".join(notes))
    return Decoded(body.decode("utf-8", errors="replace"), "utf-8", "fallback", "; ".join(notes))
