"""The 12-week trend chart as a PNG (matplotlib's Agg renderer), with a CJK font for Chinese labels.

The font is looked up at run time because where it lives depends on the machine
(Debian `fonts-noto-cjk`, fontconfig, a font shipped in a Python package, an
explicit DONGXIAN_CJK_FONT path). Without one the chart falls back to English
labels, so it is still legible instead of full of empty boxes.
"""
from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol, Sequence

# Figure and the Agg canvas directly, never pyplot: no global backend or figure state to share.
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import PercentFormatter

from cards.texts import t



class WeekRates(Protocol):
    """One week's four rates (None where the week has nothing to count); the pulse's figures fit."""

    @property
    def fill_rate(self) -> float | None: ...
    @property
    def completion_rate(self) -> float | None: ...
    @property
    def linkage_rate(self) -> float | None: ...
    @property
    def witness_rate(self) -> float | None: ...

log = logging.getLogger(__name__)

FONT_ENV = "DONGXIAN_CJK_FONT"

# Simplified-Chinese faces first: a JP or TC face renders some 汉字 with other shapes.
_PREFERRED_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Sarasa Gothic SC", "Droid Sans Fallback",
    "PingFang SC", "Microsoft YaHei", "SimHei", "Noto Serif CJK SC", "Noto Sans CJK JP",
)
_KNOWN_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
# Glyphs every label needs; a font missing one would draw a box.
_PROBE = "填写率完成目标关联度同事见证频次近周趋势"

_SERIES = (
    ("fill_rate", "pulse.fill", "#2f6fde"),
    ("completion_rate", "pulse.completion", "#1f9d55"),
    ("linkage_rate", "pulse.linkage", "#e08a00"),
    ("witness_rate", "pulse.witness", "#b03ab8"),
)
_TITLE = {"zh": "近 {n} 周趋势", "en": "Trend over the last {n} weeks"}
_EMPTY = {"zh": "暂无数据", "en": "No data yet"}


def _covers(path: str) -> bool:
    try:
        from matplotlib.ft2font import FT2Font

        face = FT2Font(path)
        return all(face.get_char_index(ord(ch)) for ch in _PROBE)
    except Exception:  # an unreadable or odd font file is simply not a candidate
        return False


def _known_files() -> list[str]:
    return list(_KNOWN_FILES)


def _fontconfig_files() -> list[str]:
    if shutil.which("fc-list") is None:
        return []
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split(":", 1)[0].strip() for line in out.splitlines() if line.strip()})


def _package_files() -> list[str]:
    """CJK fonts shipped inside Python packages (e.g. mplfonts), when one is installed."""
    found: list[str] = []
    try:
        import mplfonts  # type: ignore[import-not-found]
    except ImportError:
        return found
    root = Path(mplfonts.__file__).parent
    for pattern in ("**/*.ttf", "**/*.otf", "**/*.ttc"):
        found += [str(p) for p in root.glob(pattern)]
    return found


@lru_cache(maxsize=1)
def cjk_font_family() -> str | None:
    """The family name of a font that covers the chart's Chinese labels, or None."""
    explicit = os.environ.get(FONT_ENV, "")
    if explicit:
        if os.path.isfile(explicit) and _register(explicit) and _covers(explicit):
            return FontProperties(fname=explicit).get_name()
        log.warning("%s=%s is not a font with Chinese glyphs; looking elsewhere", FONT_ENV, explicit)
    # The cheap, likely places first; fontconfig and Python packages only when those fail.
    finders: tuple[Callable[[], list[str]], ...] = (_known_files, _fontconfig_files, _package_files)
    for sources in finders:
        for path in sources():
            if os.path.isfile(path):
                _register(path)
        family = _best_registered()
        if family is not None:
            return family
    log.warning("no CJK font found (install the Debian package fonts-noto-cjk, or set %s to a .ttf/.otf/.ttc); "
                "the trend chart falls back to English labels", FONT_ENV)
    return None


def _register(path: str) -> bool:
    # matplotlib's font cache may predate a font installed later; adding the file directly works anyway.
    try:
        font_manager.fontManager.addfont(path)
    except Exception:
        return False
    return True


def _best_registered() -> str | None:
    files: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        files.setdefault(entry.name, entry.fname)
    for family in _PREFERRED_FAMILIES:
        if family in files and _covers(files[family]):
            return family
    for family, path in sorted(files.items()):
        if any(k in family for k in ("CJK", "Hei", "Han", "Song", "Kai", "Ming")) and _covers(path):
            return family
    return None


def _week_label(week: str, previous: str | None) -> str:
    year, _, num = week.partition("-")
    # The year only where it changes, so twelve labels stay short.
    return f"{num}\n{year}" if previous is None or previous.split("-")[0] != year else num


def trend_png(points: Sequence[tuple[str, WeekRates]], locale: str = "zh") -> bytes:
    """A line chart of the four weekly rates (fill, completion, linkage, witness) as PNG bytes."""
    family = cjk_font_family()
    if family is None and locale == "zh":
        locale = "en"
    font = FontProperties(family=[family, "DejaVu Sans"] if family else ["DejaVu Sans"])

    fig = Figure(figsize=(8, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    weeks = [w for w, _ in points]
    xs = list(range(len(points)))
    ax.set_title(_TITLE.get(locale, _TITLE["en"]).format(n=len(points) or 12), fontproperties=font, fontsize=13)
    for attr, key, color in _SERIES:
        ys = [_value(getattr(f, attr)) for _, f in points]
        ax.plot(xs, ys, marker="o", markersize=4, linewidth=2, color=color, label=t(locale, key))
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xticks(xs)
    ax.set_xticklabels([_week_label(w, weeks[i - 1] if i else None) for i, w in enumerate(weeks)], fontsize=8)
    ax.grid(axis="y", color="#e3e6eb", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if not any(getattr(f, attr) is not None for _, f in points for attr, _, _ in _SERIES):
        ax.text(0.5, 0.5, _EMPTY.get(locale, _EMPTY["en"]), transform=ax.transAxes, ha="center",
                va="center", fontproperties=font, fontsize=14, color="#8a8f98")
    ax.legend(prop=font, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, frameon=False)
    fig.subplots_adjust(bottom=0.24, top=0.9, left=0.08, right=0.98)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _value(rate: float | None) -> float:
    # NaN leaves a gap in the line: a week with no actions has no rate, not a zero one.
    return float("nan") if rate is None else rate


# The goal calibration rate per quarter, against the article's two lines.
_CAL_TEXT = {
    "zh": {"title": "目标动态校准率（按季度）", "healthy": "健康线 15%", "top": "前20% 企业 22.7%", "rate": "校准率"},
    "en": {"title": "Goal calibration rate by quarter", "healthy": "healthy 15%", "top": "top 20% 22.7%",
           "rate": "rate"},
}
HEALTHY_LINE, TOP_LINE = 0.15, 0.227


def calibration_png(points: Sequence[tuple[str, float | None]], locale: str = "zh") -> bytes:
    """Bars of the calibration rate per quarter ('2026Q4', 0.25), with the 15 % and 22.7 % lines, as PNG bytes."""
    family = cjk_font_family()
    if family is None and locale == "zh":
        locale = "en"
    text = _CAL_TEXT.get(locale, _CAL_TEXT["en"])
    font = FontProperties(family=[family, "DejaVu Sans"] if family else ["DejaVu Sans"])
    fig = Figure(figsize=(6, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(text["title"], fontproperties=font, fontsize=13)
    xs = list(range(len(points)))
    ys = [0.0 if r is None else r for _, r in points]
    bars = ax.bar(xs, ys, color="#4c78a8", width=0.55, label=text["rate"])
    for bar, (_, r) in zip(bars, points):
        label = "—" if r is None else f"{r * 100:.1f}%"
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01, label, ha="center", fontsize=9)
    ax.axhline(HEALTHY_LINE, color="#f58518", linestyle="--", linewidth=1.5, label=text["healthy"])
    ax.axhline(TOP_LINE, color="#54a24b", linestyle=":", linewidth=1.8, label=text["top"])
    ax.set_ylim(0, max([0.3, *ys]) * 1.15)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xticks(xs)
    ax.set_xticklabels([q for q, _ in points], fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if not points:
        ax.text(0.5, 0.5, _EMPTY.get(locale, _EMPTY["en"]), transform=ax.transAxes, ha="center",
                va="center", fontproperties=font, fontsize=14, color="#8a8f98")
    ax.legend(prop=font, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    fig.subplots_adjust(bottom=0.25, top=0.88, left=0.1, right=0.98)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
