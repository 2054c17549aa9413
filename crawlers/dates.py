"""Dates on listing pages → ISO 8601, without inventing what the page does not say.

A date is resolved against the page's own capture time (``3天前`` is three days before the capture, not
before today), never against the machine's clock. A date missing its year or day is completed only from
a context the source names (``missing_year: capture`` takes the capture's year); otherwise it is kept
partial (``2026-03``, ``--07-01``) and :func:`parse_date` says so. Chinese numerals
(``二〇二六年三月五日``) and full-width digits are read. Unambiguous numeric and Chinese forms are read by
regular expressions; everything else (``Sep - 2019 / 18 / Wed``, ``18 Feb 2026``, ``yesterday``) goes to
``dateparser`` with Chinese and English only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_NUMBER = re.compile(r"[〇零○Ｏ一二两三四五六七八九十]+(?=\s*[年月日号])")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９／－．：", "0123456789/-.:")
_TIME = re.compile(r"\d{1,2}:\d{2}")
_YMD = re.compile(r"(?<!\d)(\d{4})\s*(?:[年/.-]|\s)\s*(\d{1,2})\s*(?:[月/.-]|\s)\s*(\d{1,2})(?!\d)\s*[日号]?")
_YM_CN = re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月(?!\s*\d)")
_YM = re.compile(r"^\D{0,20}?(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})(?!\s*[-/.]?\s*\d)\D{0,20}$")
_CLOCK = re.compile(r"\s*[T\s]?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?(?![:\d]|\s*[+-]\d|\s*Z\b|\s*[AaPp]\.?[Mm])")
_MD_CN = re.compile(r"(?<!\d)(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?" \
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_MDY_EN = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s+(\d{{4}})(?!\d)", re.IGNORECASE)
_DMY_EN = re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})(?!\d)", re.IGNORECASE)
_MY_EN = re.compile(rf"\b{_MONTH},?\s+(\d{{4}})(?!\d)", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_MAX_INPUT = 200  # a date is short; longer text is cut so a bad selector cannot make parsing slow


@dataclass(frozen=True)
class ParsedDate:
    """``value`` is ISO 8601 (possibly partial); ``problem`` says what was missing or not understood."""

    value: str | None
    problem: str = ""


def cn_numerals(text: str) -> str:
    """``二〇二六年三月十五日`` → ``2026年3月15日``: Chinese numerals before 年/月/日 become digits."""

    def number(match: re.Match[str]) -> str:
        chars = match.group(0)
        if "十" not in chars:
            return "".join(str(_CN_DIGITS[c]) for c in chars)
        tens, _, units = chars.partition("十")
        try:
            value = (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)
        except KeyError:
            return chars
        return str(value)

    return _CN_NUMBER.sub(number, text)


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_date(text: str, captured_at: datetime | None = None, missing_year: str = "partial") -> ParsedDate:
    """Read one date from ``text``. ``missing_year`` is ``partial`` (keep ``--MM-DD``) or ``capture``."""
    text = cn_numerals(text.translate(_FULL_WIDTH))[:_MAX_INPUT].strip()
    if not text:
        return ParsedDate(None)
    base = captured_at or datetime.now(UTC)
    match = _YMD.search(text)
    if match:
        value = _iso(*(int(g) for g in match.groups()))
        if value is None:
            return ParsedDate(None, f"{match.group(0)!r} is not a real date")
        clock = _CLOCK.match(text, match.end())
        if clock:
            hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
            if hour < 24 and minute < 60 and second < 60:
                return ParsedDate(f"{value}T{hour:02d}:{minute:02d}:{second:02d}")
        if not _TIME.search(text):
            return ParsedDate(value)
        found = _dateparser(text, base, missing_year)
        return found if found.value else ParsedDate(value)
    english = _english(text)
    if english is not None:
        return english
    match = _YM_CN.search(text) or _YM.search(text)
    if match:
        year, month = (int(g) for g in match.groups())
        if 1 <= month <= 12:
            return ParsedDate(f"{year:04d}-{month:02d}", f"{text!r} has no day: kept as {year:04d}-{month:02d}")
    match = _MD_CN.search(text)
    if match:
        return _without_year(int(match.group(1)), int(match.group(2)), text, base, missing_year)
    found = _dateparser(text, base, missing_year)
    years = _YEAR.findall(text)
    if found.value is None and len(years) == 1:  # "2012 Minutes with Index": a year is all the page says
        return ParsedDate(years[0], f"{text!r} has only a year: kept as {years[0]}")
    return found


def _month(name: str) -> int:
    return _MONTHS.index(name[:3].lower()) + 1


def _english(text: str) -> ParsedDate | None:
    """``February 7, 2018 at 3:oo pm``, ``24th February 2019``, ``Released March 2018``: English forms that
    may sit inside longer text (which dateparser refuses); the first one in the text counts."""
    full = [(m.start(), _month(m.group(1)), int(m.group(2)), int(m.group(3))) for m in _MDY_EN.finditer(text)]
    full += [(m.start(), _month(m.group(2)), int(m.group(1)), int(m.group(3))) for m in _DMY_EN.finditer(text)]
    month_year = _MY_EN.search(text)
    if full:
        start, month, day, year = min(full)
        if month_year is None or month_year.start() >= start:  # else "April 2015 (… February 3, 2015)"
            value = _iso(year, month, day)
            if value is None:
                return ParsedDate(None, f"{text!r} is not a real date")
            if _TIME.search(text):
                timed = _dateparser(text, datetime(year, month, day, tzinfo=UTC), "partial")
                if timed.value and timed.value.startswith(value):
                    return timed
            return ParsedDate(value)
    if month_year is not None:
        year, month = int(month_year.group(2)), _month(month_year.group(1))
        return ParsedDate(f"{year:04d}-{month:02d}", f"{text!r} has no day: kept as {year:04d}-{month:02d}")
    return None


def _without_year(month: int, day: int, text: str, base: datetime, missing_year: str) -> ParsedDate:
    if missing_year == "capture":
        value = _iso(base.year, month, day)
        return ParsedDate(value, "" if value else f"{text!r} is not a real date in {base.year}")
    if _iso(2000, month, day) is None:  # 2000 is a leap year: every real month/day exists in it
        return ParsedDate(None, f"{text!r} is not a real date")
    return ParsedDate(f"--{month:02d}-{day:02d}", f"{text!r} has no year: kept as --{month:02d}-{day:02d}")


def _dateparser(text: str, base: datetime, missing_year: str) -> ParsedDate:
    """dateparser, asked for a full date first, then for a date without year, then without day."""
    import dateparser

    naive = base.astimezone(UTC).replace(tzinfo=None) if base.tzinfo else base
    for parts in (["year", "month", "day"], ["month", "day"], ["year", "month"]):
        settings = {"RELATIVE_BASE": naive, "REQUIRE_PARTS": parts, "PREFER_DATES_FROM": "past"}
        try:
            found = dateparser.parse(text, languages=["zh", "en"], settings=settings)  # type: ignore[arg-type]
        except Exception:  # dateparser raises assorted errors on odd input: the date is then absent
            return ParsedDate(None, f"{text!r} is not a date")
        if found is None:
            continue
        if parts == ["month", "day"]:
            return _without_year(found.month, found.day, text, base, missing_year)
        if parts == ["year", "month"]:
            return ParsedDate(f"{found.year:04d}-{found.month:02d}",
                              f"{text!r} has no day: kept as {found.year:04d}-{found.month:02d}")
        return ParsedDate(found.isoformat() if _TIME.search(text) else found.date().isoformat())
    return ParsedDate(None, f"{text!r} is not a date")
