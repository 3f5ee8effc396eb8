"""Charts for the monitoring pages: estimates with 95 % intervals, targets, trends.

matplotlib with the Agg backend; the CJK font is registered by file path
(:func:`learningcity.fonts.register_cjk_font`) and drawn first, so district and group names
in Chinese render even when matplotlib's font cache predates the font.  Value axes read
honestly (:func:`axis_limits`): shares 0-100 %, ability on the reporting scale.  SVG keeps
the text as paths, so a chart looks the same wherever it is opened.  The numbers are always
in the table beside the chart; a chart never holds a number the table lacks.
"""
from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.ticker import MaxNLocator

from learningcity.fonts import register_cjk_font

CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC")
FORMATS = ("svg", "png")
#: pyplot and rcParams are process-global: web threads draw one chart at a time
_LOCK = threading.Lock()


def _font() -> list[str]:
    """Font families for chart text: the CJK font registered by file path first (matplotlib's
    font cache may predate its install), then CJK fonts the cache knows, then DejaVu Sans."""
    registered = register_cjk_font()
    have = {f.name for f in font_manager.fontManager.ttflist}
    known = [f for f in CJK_FONTS if f in have and f != registered]
    return ([registered] if registered else []) + known + ["DejaVu Sans"]


def _save(fig: Any, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"chart format: one of {', '.join(FORMATS)}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=96, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _rc() -> dict[str, Any]:
    return {"font.sans-serif": _font(), "font.family": "sans-serif",
            "axes.unicode_minus": False, "svg.fonttype": "path"}


#: value axes: shares in percent, ability on the reporting scale, other numbers
AXES = ("share", "ability", "number")
#: the reporting scale's axis (mean 500, SD 100): fixed, so a 3-point gap looks like one
REPORTING_AXIS = (300.0, 700.0)


def _axis_of(p: dict[str, Any]) -> str:
    axis = p.get("axis") or ("share" if p.get("share") else "number")
    if axis not in AXES:
        raise ValueError(f"chart axis: one of {', '.join(AXES)}")
    return axis


def _scale(share: bool) -> float:
    return 100.0 if share else 1.0


def axis_limits(axis: str, values: Sequence[float | None]) -> tuple[float, float] | None:
    """The value axis of a chart: shares always 0-100 %, ability the reporting scale's
    300-700 (widened by whole 50s to hold every interval), other numbers from 0 (or the
    lowest value) to a little above the highest; None leaves it to matplotlib.

    ``values`` are the plotted numbers (percent for shares) including interval ends."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if axis == "share":
        return (0.0, 100.0)
    if axis == "ability":
        lo, hi = REPORTING_AXIS
        if finite:
            lo = min(lo, 50.0 * math.floor(min(finite) / 50.0))
            hi = max(hi, 50.0 * math.ceil(max(finite) / 50.0))
        return (lo, hi)
    if not finite:
        return None
    low, high = min(min(finite), 0.0), max(max(finite), 0.0)
    pad = 0.1 * (high - low) or 1.0
    return (low - (pad if low < 0 else 0.0), high + pad)


def _interval(est: float, lo: float | None, hi: float | None, k: float
              ) -> tuple[float, float]:
    """Lower and upper error-bar lengths (an end that is missing draws none)."""
    return ((est - (lo if lo is not None else est)) * k,
            ((hi if hi is not None else est) - est) * k)


def _values(items: Sequence[Sequence[Any]], k: float) -> list[float]:
    return [v * k for item in items for v in item[1:4] if v is not None]


def interval_chart(panels: Sequence[dict[str, Any]], fmt: str = "svg",
                   empty_text: str = "no data") -> bytes:
    """One panel per measure: a point with its 95 % interval per row label, and the target.

    ``panels``: dicts with ``title``, ``share`` (bool: percent axis) or ``axis`` (one of
    :data:`AXES`: ``"ability"`` puts the axis on the reporting scale), ``target`` (share or
    None), optionally ``target_label`` (text beside the target line, e.g. "2025 目标 26 %")
    and ``items`` = [(label, estimate, ci_low, ci_high)]; items whose estimate is None
    (suppressed, or no data) are marked "–".
    """
    with _LOCK, plt.rc_context(_rc()):
        n = max(len(panels), 1)
        heights = [max(len(p["items"]), 1) * 0.35 + 0.9 for p in panels] or [1.5]
        fig, axes = plt.subplots(n, 1, figsize=(6.4, sum(heights)),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        if not panels:
            axes[0][0].text(0.5, 0.5, empty_text, ha="center", va="center")
            axes[0][0].axis("off")
        for ax, p in zip(axes[:, 0], panels, strict=False):
            axis = _axis_of(p)
            k = _scale(axis == "share")
            labels = [str(i[0]) for i in p["items"]]
            ys = list(range(len(labels)))[::-1]
            for y, (_label, est, lo, hi) in zip(ys, p["items"], strict=True):
                if est is None:
                    ax.text(0.01, y, "–", transform=ax.get_yaxis_transform(), va="center")
                    continue
                low, high = _interval(est, lo, hi, k)
                ax.errorbar([est * k], [y], xerr=[[low], [high]], fmt="o", color="#0b5cad",
                            ecolor="#0b5cad", capsize=4, lw=1.6)
            if p.get("target") is not None:
                ax.axvline(p["target"] * k, color="#b00020", ls="--", lw=1.2)
                if p.get("target_label"):
                    ax.text(p["target"] * k, 1.0, " " + p["target_label"], color="#b00020",
                            fontsize=8, va="bottom", ha="left",
                            transform=ax.get_xaxis_transform())
            ax.set_yticks(ys)
            ax.set_yticklabels(labels)
            ax.set_ylim(-0.7, len(labels) - 0.3)
            extra = [p["target"] * k] if p.get("target") is not None else []
            limits = axis_limits(axis, _values(p["items"], k) + extra)
            if limits:
                ax.set_xlim(*limits)
            if axis == "share":
                ax.set_xlabel("%")
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(p.get("title", ""), fontsize=10, loc="left")
        fig.tight_layout()
        return _save(fig, fmt)


def trend_chart(series: dict[str, list[tuple[Any, float | None, float | None, float | None]]],
                title: str, share: bool, target: float | None = None, fmt: str = "svg",
                empty_text: str = "no data", *, axis: str | None = None,
                target_label: str = "") -> bytes:
    """One line per series (e.g. district) across campaigns, with 95 % intervals as error
    bars and the target as a dashed line labelled ``target_label``.

    x values are campaign years (int) or ISO closing dates (text), sorted; ``axis`` (one of
    :data:`AXES`, default from ``share``) fixes the value axis (:func:`axis_limits`)."""
    axis = _axis_of({"axis": axis, "share": share})
    with _LOCK, plt.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        k = _scale(axis == "share")
        xs_all = sorted({x for points in series.values() for x, *_rest in points},
                        key=lambda x: (str(type(x)), x))
        pos = {x: i for i, x in enumerate(xs_all)}
        values: list[float] = []
        for name, points in series.items():
            pts = [(pos[x], e, lo, hi) for x, e, lo, hi in points if e is not None]
            if not pts:
                continue
            bars = [_interval(e, lo, hi, k) for _x, e, lo, hi in pts]
            ax.errorbar([p[0] for p in pts], [p[1] * k for p in pts],
                        yerr=[[b[0] for b in bars], [b[1] for b in bars]],
                        marker="o", capsize=4, lw=1.6, label=name)
            values += _values([(None, *p[1:]) for p in pts], k)
        if target is not None:
            _target_line(ax, target * k, target_label)
            values.append(target * k)
        if not xs_all:
            ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks(range(len(xs_all)))
        ax.set_xticklabels([str(x) for x in xs_all], fontsize=8)
        ax.set_xlim(-0.5, max(len(xs_all), 1) - 0.5)
        limits = axis_limits(axis, values)
        if limits:
            ax.set_ylim(*limits)
        if axis == "share":
            ax.set_ylabel("%")
        ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=10, loc="left")
        if any(e is not None for pts in series.values() for _x, e, *_r in pts):
            ax.legend(fontsize=8)
        fig.tight_layout()
        return _save(fig, fmt)


def _target_line(ax: Any, y: float, label: str) -> None:
    ax.axhline(y, color="#b00020", ls="--", lw=1.2)
    if label:
        ax.text(0.01, y, label, color="#b00020", fontsize=8, ha="left", va="bottom",
                transform=ax.get_yaxis_transform(), zorder=5,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})


def year_trend_chart(panels: Sequence[dict[str, Any]], years: Sequence[int], axis: str,
                     target: float | None = None, target_label: str = "", fmt: str = "svg",
                     empty_text: str = "no data", columns: int | None = None) -> bytes:
    """An indicator over the campaign years, one small panel per district (or one panel):
    x = year, a point with its 95 % interval per year, the target as a dashed horizontal
    line labelled ``target_label`` (e.g. "2025 目标 26 %"), the same value axis in every
    panel (:func:`axis_limits`: shares 0-100 %, ability 300-700).

    ``panels``: dicts with ``title`` and ``points`` = [(year, estimate, ci_low, ci_high)]
    (estimate None: withheld; a panel without a number says ``empty_text``); ``years`` the
    x ticks; ``columns`` panels per row (default: 1 for one panel, else up to 3)."""
    if axis not in AXES:
        raise ValueError(f"chart axis: one of {', '.join(AXES)}")
    years = sorted({int(y) for y in years})
    k = _scale(axis == "share")
    with _LOCK, plt.rc_context(_rc()):
        n = max(len(panels), 1)
        cols = max(1, min(columns or (1 if n == 1 else 3), n))
        rows = math.ceil(n / cols)
        width, height = (6.4, 3.4) if n == 1 else (3.2 * cols, 2.3 * rows)
        fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False,
                                 sharey=True)
        values = [v * k for p in panels for _y, *rest in p["points"] for v in rest
                  if v is not None] + ([target * k] if target is not None else [])
        limits = axis_limits(axis, values)
        flat = list(axes.flat)
        for ax in flat[len(panels):]:
            ax.axis("off")
        if not panels:
            flat[0].axis("on")
            flat[0].text(0.5, 0.5, empty_text, ha="center", va="center",
                         transform=flat[0].transAxes)
        for ax, p in zip(flat, panels, strict=False):
            pts = sorted((int(y), e, lo, hi) for y, e, lo, hi in p["points"] if e is not None)
            if pts:
                bars = [_interval(e, lo, hi, k) for _y, e, lo, hi in pts]
                ax.errorbar([q[0] for q in pts], [q[1] * k for q in pts],
                            yerr=[[b[0] for b in bars], [b[1] for b in bars]],
                            fmt="-o", color="#0b5cad", ecolor="#0b5cad", capsize=4, lw=1.6)
            else:
                ax.text(0.5, 0.5, empty_text, ha="center", va="center", color="#555555",
                        transform=ax.transAxes)
            if target is not None:
                _target_line(ax, target * k, target_label)
            ax.set_xticks(years or [q[0] for q in pts])
            ax.set_xticklabels([str(y) for y in (years or [q[0] for q in pts])], fontsize=8)
            if years:
                ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
            if limits:
                ax.set_ylim(*limits)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(alpha=0.3)
            ax.set_title(p.get("title", ""), fontsize=10, loc="left")
        if axis == "share":
            for row in axes:
                row[0].set_ylabel("%")
        fig.tight_layout()
        return _save(fig, fmt)


CHART_LABELS = {"per_day": "completes per day", "cumulative": "cumulative",
                "empty": "no completes yet"}


def daily_chart_png(report: Any, title: str = "",
                    labels: dict[str, str] | None = None) -> bytes:
    """A campaign's fieldwork progress (:class:`~monitoring.fieldwork.progress.ProgressReport`):
    bars of completes per day with the cumulative line (PNG).

    ``labels`` (per_day, cumulative, empty) lets the page pass translated axis texts."""
    text = {**CHART_LABELS, **(labels or {})}
    with _LOCK, plt.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        if report.daily:
            days = [d for d, _n in report.daily]
            ax.bar(days, [n for _d, n in report.daily], color="#0b5cad",
                   label=text["per_day"])
            ax2 = ax.twinx()
            ax2.plot(days, [n for _d, n in report.cumulative], color="#b36b00", lw=2,
                     label=text["cumulative"])
            ax2.set_ylabel(text["cumulative"])
            ax2.set_ylim(bottom=0)
            ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(days) // 8)))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
            fig.autofmt_xdate()
        else:
            ax.text(0.5, 0.5, text["empty"], ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_ylabel(text["per_day"])
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, axis="y")
        ax.set_title(title or report.campaign)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
        plt.close(fig)
    return buffer.getvalue()
