"""Bar and column charts drawn as inline SVG (templates/admin/office/dashboard/): the layout of
each rectangle and label, computed here so that the templates only place them. No JavaScript,
nothing from a CDN."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

WIDTH = 660

# Horizontal bars: label | bars | note.
LABEL_RIGHT = 182
PLOT_X = 190
PLOT_WIDTH = 290
NOTE_X = PLOT_X + PLOT_WIDTH + 8
BAR_HEIGHT = 14
ROW_GAP = 10
LEGEND_HEIGHT = 24
LABEL_CHARS = 26

# Columns (applications per day).
COLUMNS_LEFT = 40
COLUMNS_TOP = 12
COLUMNS_BOTTOM = 172
COLUMNS_HEIGHT = 196


@dataclass
class Rect:
    x: int
    y: int
    width: int
    height: int
    series: int = 0


@dataclass
class BarRow:
    label: str
    values: list[int]
    capacity: int | None = None
    note: str = ""
    # Drawn by BarChart.layout():
    text_y: int = 0
    track: Rect | None = None
    bars: list[Rect] = field(default_factory=list)

    @property
    def short_label(self) -> str:
        return self.label if len(self.label) <= LABEL_CHARS else self.label[: LABEL_CHARS - 1] + "…"


@dataclass
class LegendItem:
    name: str
    x: int
    text_x: int
    css: str


@dataclass
class BarChart:
    """Horizontal bars, one row per category, one bar per series, with an optional capacity
    drawn as a dashed outline behind the bars."""

    id: str
    title: str
    description: str
    category: str  # what a row is, for the data table's first column
    series: list[str]
    rows: list[BarRow]
    capacity_label: str = ""
    per_row_scale: bool = False  # each row against its own capacity (different units)
    empty_text: str = ""
    kind: str = "bars"
    width: int = WIDTH
    height: int = 0
    legend: list[LegendItem] = field(default_factory=list)
    label_right: int = LABEL_RIGHT
    note_x: int = NOTE_X

    def layout(self) -> BarChart:
        top = 4
        if len(self.series) > 1 or self.capacity_label:
            x = PLOT_X
            names = [*self.series, *([self.capacity_label] if self.capacity_label else [])]
            for i, name in enumerate(names):
                css = f"dash-s{i}" if i < len(self.series) else "dash-track"
                self.legend.append(LegendItem(name, x, x + 14, css))
                x += 14 + _text_width(name) + 16
            top = LEGEND_HEIGHT
        shared = max([1, *(v for r in self.rows for v in r.values)])
        shared = max([shared, *(r.capacity or 0 for r in self.rows)])
        y = top
        for row in self.rows:
            scale = shared
            if self.per_row_scale:
                scale = max(1, row.capacity or 0, *row.values)
            block = len(row.values) * (BAR_HEIGHT + 2) - 2
            if row.capacity:
                row.track = Rect(PLOT_X, y - 2, _length(row.capacity, scale), block + 4)
            row.bars = [
                Rect(PLOT_X, y + i * (BAR_HEIGHT + 2), _length(v, scale), BAR_HEIGHT, i)
                for i, v in enumerate(row.values)
            ]
            row.text_y = y + block // 2 + 4
            y += block + ROW_GAP
        self.height = y + 4
        return self


def _text_width(text: str) -> int:
    """Rough width in pixels at 12px: full-width (Japanese) characters are twice as wide."""
    return sum(12 if ord(ch) > 0x2E7F else 7 for ch in text)


def _length(value: int, scale: int) -> int:
    if value <= 0:
        return 0
    return max(1, round(value * PLOT_WIDTH / scale))


@dataclass
class Column:
    day: dt.date
    label: str
    value: int
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    tick: str = ""
    tick_x: int = 0


@dataclass
class ColumnChart:
    id: str
    title: str
    description: str
    category: str
    series: str
    columns: list[Column]
    kind: str = "columns"
    width: int = WIDTH
    height: int = COLUMNS_HEIGHT
    max_value: int = 0
    left: int = COLUMNS_LEFT
    top: int = COLUMNS_TOP
    bottom: int = COLUMNS_BOTTOM
    right: int = WIDTH - 8
    tick_y: int = COLUMNS_BOTTOM + 16

    def layout(self) -> ColumnChart:
        self.max_value = max([1, *(c.value for c in self.columns)])
        slot = (self.right - self.left) / max(1, len(self.columns))
        plot_height = self.bottom - self.top
        last = len(self.columns) - 1
        for i, c in enumerate(self.columns):
            c.height = round(c.value * plot_height / self.max_value)
            c.x = round(self.left + i * slot + 1)
            c.width = max(1, round(slot) - 2)
            c.y = self.bottom - c.height
            # The first day, every week after it, and the last day.
            if i == last or (i % 7 == 0 and last - i >= 3):
                c.tick = f"{c.day.month}/{c.day.day}"
                c.tick_x = round(c.x + c.width / 2)
        return self
