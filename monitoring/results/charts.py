"""Charts for the monitoring pages: estimates with 95 % intervals, targets, trends.

matplotlib with the Agg backend; the CJK font (WenQuanYi Micro Hei) is used when
installed so district and group names in Chinese render.  SVG keeps the text as
paths, so a chart looks the same wherever it is opened.  The numbers are always
in the table beside the chart; a chart never holds a number the table lacks.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.ticker import MaxNLocator

CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC")
FORMATS = ("svg", "png")
#: pyplot and rcParams are process-global: web threads draw one chart at a time
_LOCK = threading.Lock()


def _font() -> list[str]:
    have = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in have] + ["DejaVu Sans"]


def _save(fig: Any, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"chart format: one of {', '.join(FORMATS)}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=96, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _scale(share: bool) -> float:
    return 100.0 if share else 1.0


def interval_chart(panels: Sequence[dict[str, Any]], fmt: str = "svg",
                   empty_text: str = "no data") -> bytes:
    """One panel per measure: a point with its 95 % interval per row label, and the target.

    ``panels``: dicts with ``title``, ``share`` (bool: percent axis), ``target``
    (share or None) and ``items`` = [(label, estimate, ci_low, ci_high)];
    items whose estimate is None (suppressed) are listed as "–".
    """
    with _LOCK, plt.rc_context({"font.sans-serif": _font(), "font.family": "sans-serif",
                                "axes.unicode_minus": False, "svg.fonttype": "path"}):
        n = max(len(panels), 1)
        heights = [max(len(p["items"]), 1) * 0.35 + 0.9 for p in panels] or [1.5]
        fig, axes = plt.subplots(n, 1, figsize=(6.4, sum(heights)),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        if not panels:
            axes[0][0].text(0.5, 0.5, empty_text, ha="center", va="center")
            axes[0][0].axis("off")
        for ax, p in zip(axes[:, 0], panels, strict=False):
            k = _scale(bool(p.get("share")))
            labels = [str(i[0]) for i in p["items"]]
            ys = list(range(len(labels)))[::-1]
            for y, (_label, est, lo, hi) in zip(ys, p["items"], strict=True):
                if est is None:
                    ax.text(0.01, y, "–", transform=ax.get_yaxis_transform(), va="center")
                    continue
                ax.errorbar([est * k], [y], xerr=[[(est - (lo if lo is not None else est)) * k],
                                                  [((hi if hi is not None else est) - est) * k]],
                            fmt="o", color="#0b5cad", ecolor="#0b5cad", capsize=4, lw=1.6)
            if p.get("target") is not None:
                ax.axvline(p["target"] * k, color="#b00020", ls="--", lw=1.2)
            ax.set_yticks(ys)
            ax.set_yticklabels(labels)
            ax.set_ylim(-0.7, len(labels) - 0.3)
            if p.get("share"):
                ax.set_xlim(0, 100)
                ax.set_xlabel("%")
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(p.get("title", ""), fontsize=10, loc="left")
        fig.tight_layout()
        return _save(fig, fmt)


def trend_chart(series: dict[str, list[tuple[str, float | None, float | None, float | None]]],
                title: str, share: bool, target: float | None = None, fmt: str = "svg",
                empty_text: str = "no data") -> bytes:
    """One line per district across campaigns (x = closing date, ISO text), with
    95 % intervals as error bars and the target as a dashed line."""
    with _LOCK, plt.rc_context({"font.sans-serif": _font(), "font.family": "sans-serif",
                                "axes.unicode_minus": False, "svg.fonttype": "path"}):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        k = _scale(share)
        xs_all: list[str] = []
        for points in series.values():
            for x, *_rest in points:
                if x not in xs_all:
                    xs_all.append(x)
        xs_all.sort()  # ISO closing dates: chronological
        pos = {x: i for i, x in enumerate(xs_all)}
        for name, points in series.items():
            pts = [(pos[x], e, lo, hi) for x, e, lo, hi in points if e is not None]
            if not pts:
                continue
            ax.errorbar([p[0] for p in pts], [p[1] * k for p in pts],
                        yerr=[[(p[1] - (p[2] if p[2] is not None else p[1])) * k for p in pts],
                              [((p[3] if p[3] is not None else p[1]) - p[1]) * k for p in pts]],
                        marker="o", capsize=4, lw=1.6, label=name)
        if target is not None:
            ax.axhline(target * k, color="#b00020", ls="--", lw=1.2)
        if not xs_all:
            ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks(range(len(xs_all)))
        ax.set_xticklabels(xs_all, rotation=20, ha="right", fontsize=8)
        if share:
            ax.set_ylim(0, 100)
            ax.set_ylabel("%")
        ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=10, loc="left")
        if series:
            ax.legend(fontsize=8)
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
    with _LOCK, plt.rc_context({"font.sans-serif": _font(), "font.family": "sans-serif",
                                "axes.unicode_minus": False}):
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
