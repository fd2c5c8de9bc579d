"""The dashboard's chart geometry and SVG (pure): scaling, axis labels, empty data, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bridge.portal.charts import (
    BOTTOM,
    HEIGHT,
    LEFT,
    MAX_BAR,
    MAX_X_LABELS,
    RIGHT,
    TOP,
    WIDTH,
    Kind,
    Series,
    bar_chart,
    line_chart,
    nice_top,
    svg,
)

NS = {"s": "http://www.w3.org/2000/svg"}
PLOT = HEIGHT - TOP - BOTTOM
BASE = HEIGHT - BOTTOM


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


@pytest.mark.parametrize(
    ("largest", "top", "step"),
    [(0, 1, 1), (1, 1, 1), (3, 3, 1), (5, 5, 1), (7, 8, 2), (10, 10, 2), (11, 15, 5),
     (99, 100, 20), (100, 100, 20), (101, 150, 50), (12345, 15000, 5000)],
)  # fmt: skip
def test_the_axis_top_is_a_round_multiple_of_a_round_step(
    largest: int, top: int, step: int
) -> None:
    assert nice_top(largest) == (top, step)
    assert top >= largest and top // step <= 5


def test_bars_are_scaled_to_the_axis_top_and_grouped_per_category() -> None:
    chart = bar_chart(
        "SMS per day",
        "desc",
        ("2026-12-01", "2026-12-02"),
        ("12-01", "12-02"),
        [Series("sent", "Sent", "#111", (4, 8)), Series("failed", "Failed", "#222", (0, 2))],
    )
    assert chart.kind is Kind.BARS and chart.top == 8 and not chart.empty
    by = {(b.series, b.category): b for b in chart.bars}
    assert by["sent", "2026-12-02"].height == pytest.approx(PLOT)
    assert by["sent", "2026-12-01"].height == pytest.approx(PLOT / 2)
    assert by["failed", "2026-12-01"].height == 0
    for b in chart.bars:
        assert b.y + b.height == pytest.approx(BASE)  # every bar stands on the base line
    # Within a day the series sit side by side; the second day is right of the first.
    assert by["failed", "2026-12-01"].x == pytest.approx(
        by["sent", "2026-12-01"].x + by["sent", "2026-12-01"].width
    )
    assert by["sent", "2026-12-02"].x > by["failed", "2026-12-01"].x
    assert [t.value for t in chart.ticks] == [0, 2, 4, 6, 8]
    assert chart.ticks[0].y == pytest.approx(BASE) and chart.ticks[-1].y == pytest.approx(TOP)


def test_a_line_has_a_point_per_category_at_its_scaled_height() -> None:
    chart = line_chart(
        "Inbound", "desc", ("a", "b", "c"), ("A", "B", "C"), [Series("in", "In", "#333", (0, 5, 2))]
    )
    assert [p.value for p in chart.points] == [0, 5, 2]
    assert [p.y for p in chart.points] == pytest.approx([BASE, TOP, BASE - PLOT * 2 / 5])
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)
    root = parse(svg(chart, "c1", "No data"))
    [line] = root.findall(".//s:polyline", NS)
    assert len(line.attrib["points"].split()) == 3
    assert len(root.findall(".//s:circle", NS)) == 3


def test_the_svg_is_titled_described_and_labels_its_axes() -> None:
    chart = bar_chart(
        "SMS per day",
        "Sent SMS per day",
        ("2026-12-01", "2026-12-02"),
        ("12-01", "12-02"),
        [Series("sent", "Sent", "#111", (1, 3))],
    )
    root = parse(svg(chart, "chart-status", "No data"))
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-labelledby"] == "chart-status-title chart-status-desc"
    assert root.find("s:title", NS).text == "SMS per day"  # type: ignore[union-attr]
    assert root.find("s:desc", NS).text == "Sent SMS per day"  # type: ignore[union-attr]
    y_labels = [t.text for t in root.findall(".//s:g[@class='axis y']/s:text", NS)]
    assert y_labels == ["0", "1", "2", "3"]
    x_labels = [t.text for t in root.findall(".//s:g[@class='axis x']/s:text", NS)]
    assert x_labels == ["12-01", "12-02"]
    bars = root.findall(".//s:rect[@class='bar sent']", NS)
    assert [(b.attrib["data-category"], b.attrib["data-value"]) for b in bars] == [
        ("2026-12-01", "1"),
        ("2026-12-02", "3"),
    ]
    assert bars[1].find("s:title", NS).text == "Sent, 12-02: 3"  # type: ignore[union-attr]
    assert root.find(".//s:text[@class='no-data']", NS) is None


def test_bars_of_few_categories_keep_a_bar_width_and_sit_centred() -> None:
    chart = bar_chart(
        "t", "d", ("gsm7", "ucs2"), ("GSM-7", "UCS-2"), [Series("p", "P", "#1", (3, 1))]
    )
    band = (WIDTH - LEFT - RIGHT) / 2
    for i, b in enumerate(chart.bars):
        assert b.width == MAX_BAR
        assert b.x + b.width / 2 == pytest.approx(LEFT + band * (i + 0.5))


def test_many_days_show_at_most_ten_x_labels() -> None:
    days = tuple(f"d{i}" for i in range(90))
    chart = bar_chart("t", "d", days, days, [Series("s", "S", "#111", tuple(range(90)))])
    assert len(chart.x_labels) <= MAX_X_LABELS
    assert chart.x_labels[0].text == "d0"


def test_empty_data_draws_an_axis_and_says_so() -> None:
    for chart in (
        bar_chart("t", "d", (), (), [Series("s", "S", "#111", ())]),
        bar_chart("t", "d", ("a", "b"), ("a", "b"), [Series("s", "S", "#111", (0, 0))]),
        line_chart("t", "d", ("a",), ("a",), [Series("s", "S", "#111", (0,))]),
    ):
        assert chart.empty and chart.top == 1
        root = parse(svg(chart, "c", "No data in this period"))
        assert root.find(".//s:text[@class='no-data']", NS).text == "No data in this period"  # type: ignore[union-attr]
        for b in root.findall(".//s:rect[@data-value]", NS):
            assert float(b.attrib["height"]) == 0


def test_words_are_escaped() -> None:
    chart = bar_chart(
        "<script>", 'a "b" & c', ("x",), ("<b>",), [Series("s", "S & <i>", "#111", (1,))]
    )
    markup = str(svg(chart, "c", "<none>"))
    assert "<script>" not in markup and "<b>" not in markup and "<i>" not in markup
    root = parse(markup)  # still well-formed XML
    assert root.find("s:title", NS).text == "<script>"  # type: ignore[union-attr]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one value per category"):
        bar_chart("t", "d", ("a", "b"), ("a", "b"), [Series("s", "S", "#111", (1,))])
    with pytest.raises(ValueError, match="one label per category"):
        bar_chart("t", "d", ("a", "b"), ("a",), [Series("s", "S", "#111", (1, 2))])
    with pytest.raises(ValueError, match="never negative"):
        line_chart("t", "d", ("a",), ("a",), [Series("s", "S", "#111", (-1,))])
