"""The dashboard's charts: counts per category → scaled bars or lines → inline SVG.

Pure code: a chart is computed as geometry (`Chart`: bars, line points, axis ticks and
labels, in the coordinates of its viewBox) and written as an `<svg>` element with a
`<title>` and `<desc>` for screen readers and a `<title>` on every bar and point. The
page translates every word before it gets here and puts the same numbers in a table
under the chart; nothing here reads a clock, a file or the database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from markupsafe import Markup, escape

WIDTH: Final = 720
HEIGHT: Final = 260
LEFT: Final = 48  # room for the y axis labels
RIGHT: Final = 12
TOP: Final = 30  # room for the legend
BOTTOM: Final = 34  # room for the x axis labels
MAX_X_LABELS: Final = 10
MAX_TICKS: Final = 5
MAX_BAR: Final = 48  # a bar is never wider than this, however few the categories


class Kind(StrEnum):
    BARS = "bars"  # one group of bars per category, one bar per series
    LINE = "line"  # one line per series, a point per category


@dataclass(frozen=True, slots=True)
class Series:
    """One measured thing: `key` names it in markup (a CSS class), `label` in words."""

    key: str
    label: str
    colour: str
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Bar:
    series: str
    category: str
    value: int
    x: float
    y: float
    width: float
    height: float
    text: str  # what the bar's <title> says


@dataclass(frozen=True, slots=True)
class Point:
    series: str
    category: str
    value: int
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Tick:
    """A y axis line and its label."""

    value: int
    y: float


@dataclass(frozen=True, slots=True)
class XLabel:
    text: str
    x: float


@dataclass(frozen=True, slots=True)
class Chart:
    kind: Kind
    title: str
    desc: str
    categories: tuple[str, ...]  # keys (ISO days, encodings)
    labels: tuple[str, ...]  # what the x axis shows for each category
    series: tuple[Series, ...]
    top: int  # the value at the top of the y axis
    ticks: tuple[Tick, ...]
    x_labels: tuple[XLabel, ...]
    bars: tuple[Bar, ...]
    points: tuple[Point, ...]
    empty: bool  # no category, or every value zero
    width: int = WIDTH
    height: int = HEIGHT


def nice_top(largest: int) -> tuple[int, int]:
    """(top of the axis, tick step) for counts up to `largest`: steps of 1, 2 or 5 × 10^k,
    at most MAX_TICKS of them, the top a multiple of the step and >= largest."""
    if largest <= 0:
        return 1, 1
    magnitude = 10 ** max(0, math.floor(math.log10(largest)) - 1)
    for factor in (1, 2, 5, 10, 20, 50, 100):
        step = factor * magnitude
        if math.ceil(largest / step) <= MAX_TICKS:
            return math.ceil(largest / step) * step, step
    raise AssertionError("unreachable: 100 × 10^(k-1) steps cover any count")


def _check(categories: Sequence[str], labels: Sequence[str], series: Sequence[Series]) -> None:
    if len(labels) != len(categories):
        raise ValueError("one label per category")
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.key}: one value per category")
        if any(v < 0 for v in s.values):
            raise ValueError(f"series {s.key}: counts are never negative")


def _axis(
    categories: Sequence[str], labels: Sequence[str], series: Sequence[Series], height: int
) -> tuple[int, tuple[Tick, ...], float, float]:
    largest = max((max(s.values, default=0) for s in series), default=0)
    top, step = nice_top(largest)
    plot = height - TOP - BOTTOM
    ticks = tuple(Tick(v, height - BOTTOM - plot * v / top) for v in range(0, top + 1, step))
    band = (WIDTH - LEFT - RIGHT) / max(1, len(categories))
    return top, ticks, band, plot


def _x_labels(labels: Sequence[str], band: float) -> tuple[XLabel, ...]:
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    return tuple(
        XLabel(text, LEFT + band * (i + 0.5)) for i, text in enumerate(labels) if i % every == 0
    )


def bar_chart(
    title: str,
    desc: str,
    categories: Sequence[str],
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    height: int = HEIGHT,
) -> Chart:
    """Grouped bars: per category one bar per series, heights scaled to the axis top,
    each group centred in its category's band."""
    _check(categories, labels, series)
    top, ticks, band, plot = _axis(categories, labels, series, height)
    width = min(band * 0.8 / max(1, len(series)), MAX_BAR)
    group = width * len(series)
    bars = []
    for i, category in enumerate(categories):
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot * value / top
            bars.append(
                Bar(
                    s.key,
                    category,
                    value,
                    LEFT + band * i + (band - group) / 2 + width * j,
                    height - BOTTOM - h,
                    width,
                    h,
                    f"{s.label}, {labels[i]}: {value}",
                )
            )
    return Chart(
        Kind.BARS,
        title,
        desc,
        tuple(categories),
        tuple(labels),
        tuple(series),
        top,
        ticks,
        _x_labels(labels, band),
        tuple(bars),
        (),
        empty=not any(b.value for b in bars),
        height=height,
    )


def line_chart(
    title: str,
    desc: str,
    categories: Sequence[str],
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    height: int = HEIGHT,
) -> Chart:
    """One line per series through a point per category, scaled to the axis top."""
    _check(categories, labels, series)
    top, ticks, band, plot = _axis(categories, labels, series, height)
    points = tuple(
        Point(
            s.key,
            category,
            s.values[i],
            LEFT + band * (i + 0.5),
            height - BOTTOM - plot * s.values[i] / top,
            f"{s.label}, {labels[i]}: {s.values[i]}",
        )
        for s in series
        for i, category in enumerate(categories)
    )
    return Chart(
        Kind.LINE,
        title,
        desc,
        tuple(categories),
        tuple(labels),
        tuple(series),
        top,
        ticks,
        _x_labels(labels, band),
        (),
        points,
        empty=not any(p.value for p in points),
        height=height,
    )


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def svg(chart: Chart, chart_id: str, no_data: str) -> Markup:
    """The chart as an inline <svg> (role img, titled and described; `no_data` shown when
    there is nothing to draw). Every text is escaped."""
    e = escape
    w, h = chart.width, chart.height
    base = h - BOTTOM
    out = [
        f'<svg class="chart chart-{e(chart.kind)}" id="{e(chart_id)}" role="img" '
        f'viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'aria-labelledby="{e(chart_id)}-title {e(chart_id)}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{e(chart_id)}-title">{e(chart.title)}</title>',
        f'<desc id="{e(chart_id)}-desc">{e(chart.desc)}</desc>',
        '<g class="axis y" font-size="11" fill="#5b6475" text-anchor="end">',
    ]
    for t in chart.ticks:
        out.append(
            f'<line x1="{LEFT}" x2="{w - RIGHT}" y1="{_n(t.y)}" y2="{_n(t.y)}" '
            f'stroke="#d9dde5" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{_n(t.y + 4)}">{t.value}</text>'
        )
    out.append("</g>")
    out.append('<g class="axis x" font-size="11" fill="#5b6475" text-anchor="middle">')
    for label in chart.x_labels:
        out.append(f'<text x="{_n(label.x)}" y="{base + 16}">{e(label.text)}</text>')
    out.append("</g>")
    out.append('<g class="legend" font-size="12" fill="#1d2330">')
    x = float(LEFT)
    for s in chart.series:
        out.append(
            f'<rect x="{_n(x)}" y="8" width="12" height="12" fill="{e(s.colour)}"/>'
            f'<text x="{_n(x + 16)}" y="18">{e(s.label)}</text>'
        )
        x += 28 + 7 * len(s.label)
    out.append("</g>")
    colours = {s.key: s.colour for s in chart.series}
    if chart.bars:
        out.append('<g class="bars">')
        for b in chart.bars:
            out.append(
                f'<rect class="bar {e(b.series)}" data-category="{e(b.category)}" '
                f'data-value="{b.value}" x="{_n(b.x)}" y="{_n(b.y)}" width="{_n(b.width)}" '
                f'height="{_n(b.height)}" fill="{e(colours[b.series])}">'
                f"<title>{e(b.text)}</title></rect>"
            )
        out.append("</g>")
    if chart.points:
        out.append('<g class="lines">')
        for s in chart.series:
            mine = [p for p in chart.points if p.series == s.key]
            coords = " ".join(f"{_n(p.x)},{_n(p.y)}" for p in mine)
            out.append(
                f'<polyline class="line {e(s.key)}" points="{coords}" fill="none" '
                f'stroke="{e(s.colour)}" stroke-width="2"/>'
            )
            for p in mine:
                out.append(
                    f'<circle class="point {e(s.key)}" data-category="{e(p.category)}" '
                    f'data-value="{p.value}" cx="{_n(p.x)}" cy="{_n(p.y)}" r="3" '
                    f'fill="{e(s.colour)}"><title>{e(p.text)}</title></circle>'
                )
        out.append("</g>")
    out.append(
        f'<line class="baseline" x1="{LEFT}" x2="{w - RIGHT}" y1="{base}" y2="{base}" '
        f'stroke="#5b6475" stroke-width="1"/>'
    )
    if chart.empty:
        out.append(
            f'<text class="no-data" x="{_n((LEFT + w - RIGHT) / 2)}" y="{_n((TOP + base) / 2)}" '
            f'font-size="14" fill="#5b6475" text-anchor="middle">{e(no_data)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
