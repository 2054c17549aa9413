"""Month calendars on listing pages: the events are the links in the day cells, not the week rows.

A month grid is a table of weeks (at least four rows of seven cells) whose cells start with their day
number (1…31). Read as ordinary sibling groups
its rows (weeks) would become the items; instead every event link in a day cell is an item, titled by
its own text. The month and year usually sit in a heading outside the grid, so no date rule is proposed.
"""

from __future__ import annotations

import re

from lxml.etree import _Element

from crawlers.propose_fields import links, text_of

DAY = re.compile(r"\s*(\d{1,2})(?!\d)")   # "3Board meeting": the cell text runs on
MIN_DAYS = 20   # a month grid shows at least the days of a short month in cells


def _day_number(cell: _Element) -> int | None:
    match = DAY.match(text_of(cell))
    return int(match.group(1)) if match and 1 <= int(match.group(1)) <= 31 else None


def calendar_events(root: _Element) -> list[_Element]:
    """The event links of the page's month grid with the most events (empty when there is none)."""
    best: list[_Element] = []
    for table in root.iter("table"):
        if sum(1 for tr in table.iter("tr") if len(tr.findall("td")) == 7) < 4:
            continue
        cells = [td for td in table.iter("td") if _day_number(td) is not None]
        days = {_day_number(td) for td in cells}
        if len(days) < MIN_DAYS:
            continue
        events = [a for td in cells for a in links(td) if text_of(a) and text_of(a) != str(_day_number(td))]
        if len(events) > len(best):
            best = events
    return best
