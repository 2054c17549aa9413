"""Small bar charts drawn on the server as inline SVG: no chart library, no script, readable by screen readers.

Each chart is ``role="img"`` with a label that says what it shows and its largest value; each bar carries a
``<title>`` (hover text). Pages put the numbers in a table beside the chart for anyone who would rather read.
Charts meant to be compared (one per source) take a shared week range and top value, so the same place on
each means the same week and the same height the same count. A bar is at most ``MAX_BAR`` wide: one week of
data is a bar, not a block across the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 160, 24
MAX_BAR = 48
# Event kinds in a stacked chart: the badge colours of the pages, each at least 3:1 against white (WCAG 1.4.11).
KIND_COLOURS = {"new": "#1a6b32", "changed": "#1d4e89", "missing": "#a35a00", "removed": "#a4161a",
                "reappeared": "#6a3d9a"}


def _num(value: float) -> str:
    """3 significant digits: 15.8894 s reads 15.9 s."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def bar_chart(points: Sequence[tuple[str, float]], label: str, *, unit: str = "", width: int = WIDTH,
              height: int = HEIGHT, css_class: str = "chart", top: float | None = None) -> Markup:
    """Bars for ``(label, value)`` points, left to right; the first and last labels under the axis. ``top``:
    the value of a full-height bar (default the largest), shared by charts that are compared."""
    if not points:
        return Markup('<p class="empty">No data yet for {}.</p>').format(label)
    top = top or max(0, *(v for _, v in points)) or 1  # a negative value (a clock step in a run) draws no bar
    plot = _Plot(len(points), width, height)
    bars = []
    for i, (name, value) in enumerate(points):
        h = plot.inner_h * max(value, 0) / top
        bars.append(Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="bar">'
                           '<title>{}: {}{}</title></rect>').format(plot.x(i), height - PAD - h, plot.bar, h, name,
                                                                    _num(value), unit))
    return plot.frame(css_class, f"{label}: {len(points)} values, largest {_num(top)}{unit}", bars,
                      (points[0][0], points[-1][0]), f"{_num(top)}{unit}")


def stacked_chart(series: dict[str, dict[str, int]], label: str, *, width: int = WIDTH,
                  height: int = HEIGHT) -> Markup:
    """Weekly bars stacked by event kind (``kind → week → count``), coloured as ``KIND_COLOURS``, with a
    legend: what changed each week, not only how much."""
    kinds = [k for k in KIND_COLOURS if series.get(k)]
    weeks = weekly({w: 1 for k in kinds for w in series[k]})
    if not weeks:
        return Markup('<p class="empty">No data yet for {}.</p>').format(label)
    totals = [sum(series[k].get(w, 0) for k in kinds) for w, _ in weeks]
    top = max(totals) or 1
    plot = _Plot(len(weeks), width, height)
    bars = []
    for i, (week, _) in enumerate(weeks):
        y = float(height - PAD)
        for kind in kinds:
            n = series[kind].get(week, 0)
            if n:
                h = plot.inner_h * n / top
                y -= h
                bars.append(Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">'
                                   '<title>{}: {} {}</title></rect>').format(plot.x(i), y, plot.bar, h,
                                                                              KIND_COLOURS[kind], week, n, kind))
    chart = plot.frame("chart", f"{label}: {len(weeks)} weeks, largest {top}", bars, (weeks[0][0], weeks[-1][0]),
                       str(top))
    legend = Markup("").join(Markup('<li><span class="swatch" style="background:{}"></span>{} {}</li>').format(
        KIND_COLOURS[k], sum(series[k].values()), k) for k in kinds)
    return chart + Markup('<ul class="legend">{}</ul>').format(legend)


class _Plot:
    """Where ``count`` bars go in a ``width`` x ``height`` chart (step, bar width, x of each), and the frame
    around them: the axis, the first and last labels under it, the top value."""

    def __init__(self, count: int, width: int, height: int) -> None:
        self.count, self.width, self.height = count, width, height
        self.inner_h = height - 2 * PAD
        self.step = (width - 2 * PAD) / count
        self.bar = min(max(self.step * 0.8, 1.0), MAX_BAR)

    def x(self, i: int) -> float:
        return PAD + i * self.step + (self.step - self.bar) / 2

    def frame(self, css_class: str, aria_label: str, bars: list[Markup], ends: tuple[str, str], top: str) -> Markup:
        width, height = self.width, self.height
        parts = [Markup('<svg class="{}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">').format(
            css_class, width, height, aria_label)]
        parts.append(Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>').format(
            PAD, height - PAD, width - PAD, height - PAD))
        parts += bars
        parts.append(Markup('<text x="{}" y="{}" class="tick">{}</text>').format(PAD, height - 6, ends[0]))
        if self.count > 1:
            parts.append(Markup('<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>').format(
                width - PAD, height - 6, ends[1]))
        parts.append(Markup('<text x="{}" y="{}" class="tick">{}</text>').format(PAD, PAD - 8, top))
        parts.append(Markup("</svg>"))
        return Markup("").join(parts)


def weekly(counts: dict[str, int], span: tuple[str, str] | None = None) -> list[tuple[str, float]]:
    """ISO-week counts in week order, with empty weeks between filled in as zeros. ``span``: the first and
    last week to show (a range shared by charts that are compared), widened to the data if it is narrower."""
    if not counts:
        return []
    from datetime import date

    weeks = sorted([*counts, *(span or ())])
    start = date.fromisocalendar(int(weeks[0][:4]), int(weeks[0][6:]), 1)
    end = date.fromisocalendar(int(weeks[-1][:4]), int(weeks[-1][6:]), 1)
    out: list[tuple[str, float]] = []
    day = start
    from datetime import timedelta

    while day <= end and len(out) < 520:
        year, week, _ = day.isocalendar()
        key = f"{year}-W{week:02d}"
        out.append((key, counts.get(key, 0)))
        day += timedelta(days=7)
    return out
