"""Decode listing pages the way Chinese government sites need.

Order of evidence: the source's override, a byte-order mark, what the bytes prove, the HTTP charset,
the ``<meta>`` charset, then statistical detection. Bytes that hold non-ASCII text and decode strictly
as UTF-8 are UTF-8 whatever is declared: a legacy single-byte charset (ISO-8859-1/windows-1252, a
Java servlet default) never fails to decode and would turn every title into mojibake. A declared
charset is otherwise trusted only if the body decodes under it without errors: the common real case
is a header saying ``utf-8`` over a GBK body. Each declaration the bytes contradict is kept in
``conflict`` (a problem for the crawl report and the page's metadata), never silently.
Declared names are read as browsers read them (the WHATWG Encoding Standard): each legacy label decodes
with its superset (GB2312/GBK as GB18030, ISO-8859-1 and ASCII as windows-1252, Shift_JIS as windows-31j,
EUC-KR as windows-949), so rare characters and curly quotes survive. A Latin single-byte declaration
(ISO-8859-1/windows-1252) is weak evidence: any byte string "decodes" under it, and it is what a servlet
container sends when nobody configured the charset, over GBK or Big5 pages. So it loses to the other
declaration and to a detected multi-byte CJK encoding that decodes the body strictly (the conflict noted).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Keyed by Python's canonical codec name (codecs.lookup(label).name), as normalise() looks them up.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "ascii": "utf-8", "iso8859-1": "cp1252",
              "shift_jis": "cp932", "euc_kr": "cp949", "big5": "big5hkscs"}
_LABELS = {"x-gbk": "gb18030", "x-sjis": "cp932", "windows-31j": "cp932", "x-euc-jp": "euc_jp",
           "ks_c_5601-1987": "cp949", "x-big5": "big5hkscs"}     # WHATWG labels Python does not know
_WEAK = "cp1252"
# Multi-byte encodings whose strict decode of a non-ASCII body is real evidence (a Latin text rarely decodes).
_CJK = frozenset({"gb18030", "big5hkscs", "cp950", "cp932", "euc_jp", "euc_jis_2004", "euc_jisx0213",
                  "cp949", "johab", "iso2022_jp", "iso2022_kr", "hz"})


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
    label = name.strip().strip("\"'").lower()
    try:
        canonical = codecs.lookup(_LABELS.get(label, label)).name
    except LookupError:
        return None
    if not _is_text_codec(canonical):
        return None
    return _SUPERSETS.get(canonical, canonical)


def _is_text_codec(name: str) -> bool:
    """Python also registers bytes-to-bytes codecs (hex, base64, zlib…) that no page can be written in."""
    try:
        "".encode(name)
    except LookupError:
        return False
    return True


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


def decode_body(body: bytes, content_type: str | None = None, override: str | None = None, *,
                utf8_text: str | None = None) -> Decoded:
    """``utf8_text``: ``body`` already decoded as UTF-8 with replacement characters (Scrapy's ``response.text``
    when it chose UTF-8). Without any replacement character it is the strict decoding this function would
    make again (an invalid byte always becomes one): it is taken instead, which saves a decoding of every page.
    With one, the bytes are decoded here as usual. The result is the same either way."""
    if override:
        encoding = normalise(override) or override
        return Decoded(body.decode(encoding, errors="replace"), encoding, "override")
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom):].decode(encoding, errors="replace"), encoding, "bom")
    declarations = (("http", header_charset(content_type)), ("meta", meta_charset(body)))
    proven = _utf8_proven(body, declarations, utf8_text)
    if proven is not None:
        return proven
    notes: list[str] = []
    # A weak (Latin single-byte) declaration is tried after the other one: stable sort keeps http before meta.
    for how, declared in sorted(declarations, key=lambda d: normalise(d[1]) == _WEAK):
        normalised = normalise(declared)
        if declared and not normalised:
            notes.append(f"{how} charset {declared!r} is unknown")
            continue
        if normalised == _WEAK and not body.isascii():
            nearly = _nearly_utf8(body, notes)
            if nearly is not None:
                return nearly
            cjk = _cjk_detected(body)
            if cjk is not None:
                notes.append(f"{how} charset says {declared} but the bytes are {cjk.encoding} text: "
                             f"decoded as {cjk.encoding}")
                return Decoded(cjk.text, cjk.encoding, "detected", "; ".join(notes))
        text = _strict(body, normalised)
        if text is not None:
            return Decoded(text, str(normalised), how, "; ".join(notes))
        if normalised:
            notes.append(f"{how} charset says {declared} but the body is not valid {declared}")
    nearly = _nearly_utf8(body, notes)
    if nearly is not None:
        return nearly
    best = from_bytes(body[:200_000]).best() if body else None
    if best is not None:
        detected = normalise(best.encoding) or best.encoding
        return Decoded(body.decode(detected, errors="replace"), detected, "detected", "; ".join(notes))
    return Decoded(body.decode("utf-8", errors="replace"), "utf-8", "fallback", "; ".join(notes))


def _nearly_utf8(body: bytes, notes: list[str]) -> Decoded | None:
    """UTF-8 with a few broken sequences (a CMS cutting a title mid-character): UTF-8, the broken bytes
    replaced and noted. Statistical detection would read the whole page as something else (ptcp154 for a
    Chinese page with one cut character). GBK, Big5 or Shift_JIS text read as UTF-8 gives
    several broken sequences for each valid character: at least 3 valid non-ASCII characters for each broken
    sequence are asked."""
    text = body.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    valid = sum(1 for c in text if c >= "\x80") - broken
    if not broken or valid < 3 * broken:
        return None
    notes.append(f"{broken} invalid UTF-8 sequence(s) replaced by U+FFFD")
    return Decoded(text, "utf-8", "utf-8", "; ".join(notes))


def _cjk_detected(body: bytes) -> Decoded | None:
    """The detected encoding when it is a multi-byte CJK one that decodes the whole body strictly."""
    best = from_bytes(body[:200_000]).best()
    encoding = normalise(best.encoding) if best is not None else None
    if encoding not in _CJK:
        return None
    text = _strict(body, encoding)
    return Decoded(text, str(encoding), "detected") if text is not None else None


def _cjk_declared_and_plausible(body: bytes, utf8: str, declarations: tuple[tuple[str, str | None], ...]) -> bool:
    """A short GBK/Big5/Shift_JIS text can be valid UTF-8 by chance (「通知」 in GBK is two 2-byte UTF-8
    sequences: U+0368 U+05AA). UTF-8 proves itself over a multi-byte CJK declaration that also decodes the body
    only when most of its non-ASCII characters are 3-byte ones (CJK, punctuation), as real UTF-8 CJK text is."""
    if not any(normalise(d) in _CJK and _strict(body, normalise(d)) is not None for _, d in declarations):
        return False
    wide = [c >= "\u0800" for c in utf8 if c >= "\x80"]
    return sum(wide) * 2 < len(wide)


def _utf8_proven(body: bytes, declarations: tuple[tuple[str, str | None], ...],
                 utf8_text: str | None = None) -> Decoded | None:
    """Non-ASCII bytes that decode strictly as UTF-8: UTF-8, with each contrary declaration noted."""
    if body.isascii():
        return None
    text = utf8_text if utf8_text is not None and "\ufffd" not in utf8_text else _strict(body, "utf-8")
    if text is None or _cjk_declared_and_plausible(body, text, declarations):
        return None
    how = next((h for h, d in declarations if normalise(d) == "utf-8"), "utf-8")
    contrary = [f"{h} charset says {d}" for h, d in declarations if d and normalise(d) != "utf-8"]
    note = f"{' and '.join(contrary)} but the bytes are valid UTF-8: decoded as UTF-8" if contrary else ""
    return Decoded(text, "utf-8", how, note)
