"""The contribution heat map as a PNG: departments down, contribution types across, each cell its
evidence count, "—" where the cell is suppressed (too few people to show without naming them).

Uses the CJK font lookup of cards/chart.py, so the same machines draw Chinese labels here too.
The figure is built separately from the PNG so what a cell says can be read back (tests do).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle

from cards.chart import cjk_font_family

SUPPRESSED = "—"
_EMPTY = {"zh": "暂无已核实的贡献", "en": "No verified contributions yet"}
_NOTE = {"zh": "格内为证据条数；少于 {n} 人的格不显示（—）", "en": "Cells: evidence count; under {n} people not shown (—)"}


@dataclass(frozen=True)
class HeatTable:
    title: str
    rows: Sequence[str]  # department labels
    columns: Sequence[str]  # type labels
    # values[r][c]: the evidence count; None where suppressed; 0 where nothing was recorded
    values: Sequence[Sequence[int | None]]
    min_people: int = 5


def cell_label(value: int | None) -> str:
    return SUPPRESSED if value is None else str(value)


def heatmap_figure(table: HeatTable, locale: str = "zh") -> Figure:
    family = cjk_font_family()
    if family is None and locale == "zh":
        locale = "en"  # without a CJK font, boxes instead of 汉字 help nobody
    font = FontProperties(family=[family, "DejaVu Sans"] if family else ["DejaVu Sans"])
    rows, cols = list(table.rows), list(table.columns)
    fig = Figure(figsize=(2.2 + 1.6 * max(len(cols), 1), 1.6 + 0.55 * max(len(rows), 1)), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(table.title, fontproperties=font, fontsize=12)
    if not rows:
        ax.axis("off")
        ax.text(0.5, 0.5, _EMPTY.get(locale, _EMPTY["en"]), transform=ax.transAxes, ha="center", va="center",
                fontproperties=font, fontsize=13, color="#8a8f98")
        return fig
    shown = [[v if v is not None else 0 for v in row] for row in table.values]
    top = max([1, *[v for row in shown for v in row]])
    # Suppressed cells are drawn grey, not as zero, so a blank never reads as "nobody contributed".
    grid = [[float("nan") if v is None else v / top for v in row] for row in table.values]
    ax.imshow(grid, cmap="YlOrRd", vmin=0, vmax=1, aspect="auto")
    for r, row in enumerate(table.values):
        for c, v in enumerate(row):
            if v is None:
                ax.add_patch(_grey(c, r))
            ax.text(c, r, cell_label(v), ha="center", va="center", fontproperties=font, fontsize=11,
                    color="#222222" if v is None or v / top < 0.6 else "white")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, fontproperties=font, fontsize=10)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontproperties=font, fontsize=10)
    ax.tick_params(length=0)
    fig.text(0.5, 0.02, _NOTE.get(locale, _NOTE["en"]).format(n=table.min_people), ha="center",
             fontproperties=font, fontsize=8, color="#666666")
    fig.subplots_adjust(left=0.25, right=0.97, top=0.86, bottom=0.16)
    return fig


def _grey(c: int, r: int) -> Rectangle:
    return Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor="#e6e7ea", edgecolor="white")


def heatmap_png(table: HeatTable, locale: str = "zh") -> bytes:
    buf = io.BytesIO()
    heatmap_figure(table, locale).savefig(buf, format="png")
    return buf.getvalue()
