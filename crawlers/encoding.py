"""Decode listing pages the way Chinese government sites need.

Order of evidence: the source's override, a byte-order mark, what the bytes prove, the HTTP charset,
the ``<meta>`` charset, then statistical detection. Bytes that hold non-ASCII text and decode strictly
as UTF-8 are UTF-8 whatever is declared: a legacy single-byte charset (ISO-8859-1/windows-1252, a
Java servlet default) never fails to decode and would turn every title into mojibake. A declared
charset is otherwise trusted only if the body decodes under it without errors: the common real case
is a header saying ``utf-8`` over a GBK body. Each declaration the bytes contradict is kept in
``conflict`` (a problem for the crawl report and the page's metadata), never silently.
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
    how: str          # override | bom | utf-8 (the bytes prove it) | http | meta | detected | fallback | rendered
    note: str = ""    # set when a declared charset was wrong (same as ``conflict``)

    @property
    def conflict(self) -> str:
        return self.note

    @property
    def settled(self) -> bool:
        """True unless the text had to be read against every declaration (guessed, or UTF-8 proven while all
        declarations said otherwise): a conflict that one declaration settles is reported but not doubtful."""
        return not self.note or self.how in ("override", "bom", "http", "meta")

    def metadata(self) -> dict[str, str]:
        """How the page was decoded, for its metadata record."""
        out = {"encoding": self.encoding, "how": self.how}
        if self.note:
            out["conflict"] = self.note
        return out


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
    declarations = (("http", header_charset(content_type)), ("meta", meta_charset(body)))
    proven = _utf8_proven(body, declarations)
    if proven is not None:
        return proven
    notes = []
    for how, declared in declarations:
        normalised = normalise(declared)
        if declared and not normalised:
            notes.append(f"{how} charset {declared!r} is unknown")
            continue
        text = _strict(body, normalised)
        if text is not None:
            return Decoded(text, str(normalised), how, "; ".join(notes))
        if normalised:
            notes.append(f"{how} charset says {declared} but the body is not valid {declared}")
    best = from_bytes(body[:200_000]).best() if body else None
    if best is not None:
        detected = normalise(best.encoding) or best.encoding
        return Decoded(body.decode(detected, errors="replace"), detected, "detected", "; ".join(notes))
    return Decoded(body.decode("utf-8", errors="replace"), "utf-8", "fallback", "; ".join(notes))


def _utf8_proven(body: bytes, declarations: tuple[tuple[str, str | None], ...]) -> Decoded | None:
    """Non-ASCII bytes that decode strictly as UTF-8: UTF-8, with each contrary declaration noted."""
    if body.isascii():
        return None
    text = _strict(body, "utf-8")
    if text is None:
        return None
    how = next((h for h, d in declarations if normalise(d) == "utf-8"), "utf-8")
    contrary = [f"{h} charset says {d}" for h, d in declarations if d and normalise(d) != "utf-8"]
    note = f"{' and '.join(contrary)} but the bytes are valid UTF-8: decoded as UTF-8" if contrary else ""
    return Decoded(text, "utf-8", how, note)
