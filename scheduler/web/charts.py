"""Small bar charts drawn on the server as inline SVG: no chart library, no script, readable by screen readers.

Each chart is ``role="img"`` with a label that says what it shows and its largest value; each bar carries a
``<title>`` (hover text). Pages put the numbers in a table beside the chart for anyone who would rather read.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 160, 24


def bar_chart(points: Sequence[tuple[str, float]], label: str, *, unit: str = "", width: int = WIDTH,
              height: int = HEIGHT, css_class: str = "chart") -> Markup:
    """Bars for ``(label, value)`` points, left to right; the first and last labels under the axis."""
    if not points:
        return Markup('<p class="empty">No data yet for {}.</p>').format(label)
    top = max(0, *(v for _, v in points)) or 1  # a negative value (a clock step in a run) draws no bar
    inner_w, inner_h = width - 2 * PAD, height - 2 * PAD
    step = inner_w / len(points)
    bar = max(step * 0.8, 1.0)
    parts = [Markup('<svg class="{}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">').format(
        css_class, width, height, f"{label}: {len(points)} values, largest {top:g}{unit}")]
    parts.append(Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>').format(
        PAD, height - PAD, width - PAD, height - PAD))
    for i, (name, value) in enumerate(points):
        h = inner_h * max(value, 0) / top
        x, y = PAD + i * step + (step - bar) / 2, height - PAD - h
        parts.append(Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="bar">'
                            '<title>{}: {:g}{}</title></rect>').format(x, y, bar, h, name, value, unit))
    parts.append(Markup('<text x="{}" y="{}" class="tick">{}</text>').format(PAD, height - 6, points[0][0]))
    if len(points) > 1:
        parts.append(Markup('<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>').format(
            width - PAD, height - 6, points[-1][0]))
    parts.append(Markup('<text x="{}" y="{}" class="tick">{:g}{}</text>').format(PAD, PAD - 8, top, escape(unit)))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def weekly(counts: dict[str, int]) -> list[tuple[str, float]]:
    """ISO-week counts in week order, with empty weeks between filled in as zeros."""
    if not counts:
        return []
    from datetime import date

    weeks = sorted(counts)
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
