"""Self-contained HTML calibration report for researchers.

One HTML file, no external resources: CSS is inline and every picture is a PNG drawn with
matplotlib's Agg canvas and embedded as ``data:image/png;base64``.  It can be mailed,
archived with the PARAMS.csv it describes, or opened offline.

Contents: a run summary, the item estimates with standard errors, the item fit table,
item characteristic curves (category curves for polytomous items), the test information
and standard-error curves, and the convergence history.

Accessibility: ``<html lang="en">``, a heading per section, tables with captions and
``scope`` on header cells, every picture has an ``alt`` text that states what it shows
(and the key numbers), curves are told apart by line style as well as colour, and fit
flags are written out as text rather than shown by colour alone.

Figures are built with :class:`matplotlib.figure.Figure` directly (not pyplot), so the
report never changes the process-wide matplotlib backend or leaks figures.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import catalogue
from .models import probabilities, test_information
from .params import DICHOTOMOUS, ItemParams

__all__ = ["build_report", "history_values", "png_data_uri"]

#: Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
LINESTYLES = ("-", "--", "-.", ":")
#: Items per ICC figure (several figures for a large bank).
ITEMS_PER_FIGURE = 24
#: Rule-of-thumb fit limits flagged in the fit table (mean-square infit/outfit, S-X2 p).
MNSQ_LIMITS = (0.7, 1.3)
SX2_ALPHA = 0.01

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:70rem;
margin:1.5rem auto;padding:0 1rem;color:#1a1a1a;background:#fff;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #888}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #999;padding:.2rem .5rem;text-align:right}
th[scope=row],td.text{text-align:left}thead th{background:#e8e8e8}
td.flag{font-weight:700}
dl{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem}dt{font-weight:600}
img{max-width:100%;height:auto;border:1px solid #ccc}
.note{color:#444;font-size:.9rem}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff}
"""


# ---------------------------------------------------------------------------- helpers

def png_data_uri(fig: Figure, dpi: int = 96) -> str:
    """Render a matplotlib Figure with Agg and return it as a ``data:image/png`` URI."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: Any, digits: int = 3) -> str:
    """A table cell: numbers rounded, NaN/None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        return f"{float(value):.{digits}f}"
    return str(value)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
           flags: Sequence[Sequence[bool]] | None = None) -> str:
    """An accessible HTML table; the first column is the row header (item id)."""
    out = [f"<table>\n<caption>{_esc(caption)}</caption>\n<thead><tr>"]
    out += [f'<th scope="col">{_esc(h)}</th>' for h in header]
    out.append("</tr></thead>\n<tbody>\n")
    for r, row in enumerate(rows):
        out.append(f'<tr><th scope="row">{_esc(row[0])}</th>')
        for c, value in enumerate(row[1:], start=1):
            cls = ""
            if isinstance(value, str) and any(ch.isalpha() for ch in value):
                cls = ' class="text"'  # words left-aligned, numbers right-aligned
            if flags is not None and flags[r][c]:
                cls = ' class="flag"'
            out.append(f"<td{cls}>{_esc(value)}</td>")
        out.append("</tr>\n")
    out.append("</tbody></table>\n")
    return "".join(out)


def _figure_html(uri: str, alt: str, caption: str) -> str:
    return (f'<figure><img src="{uri}" alt="{_esc(alt)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>\n")


def history_values(history: Any) -> np.ndarray:
    """Log-likelihood per iteration from a calibration history.

    Accepts a sequence of numbers, or of mappings/objects with a ``loglik`` entry (the
    shapes a calibration history may take); returns an empty array if none is found.
    """
    if history is None:
        return np.array([])
    values = []
    for entry in history:
        if isinstance(entry, Mapping):
            entry = entry.get("loglik", entry.get("log_likelihood", math.nan))
        elif hasattr(entry, "loglik"):
            entry = entry.loglik
        try:
            values.append(float(entry))
        except (TypeError, ValueError):
            values.append(math.nan)
    return np.asarray(values, dtype=float)


# ---------------------------------------------------------------------------- sections

def _summary_section(summary: Mapping[str, Any]) -> str:
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(_fmt(v))}</dd>" for k, v in summary.items())
    return (f'<section aria-labelledby="s-summary"><h2 id="s-summary">Summary</h2>'
            f"<dl>{items}</dl></section>\n")


def _warnings_section(warnings: Sequence[str], excluded: Sequence[tuple[str, str]]) -> str:
    """What the run left out or ignored, before the results (empty when nothing was)."""
    if not warnings and not excluded:
        return ""
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    table = ""
    if excluded:
        rows = "".join(f'<tr><th scope="row">{_esc(i)}</th><td class="text">{_esc(r)}</td></tr>'
                       for i, r in excluded)
        table = (f"<table><caption>Items left out ({len(excluded)})</caption><thead><tr>"
                 f'<th scope="col">Item</th><th scope="col">Reason</th></tr></thead>'
                 f"<tbody>{rows}</tbody></table>")
    return (f'<section aria-labelledby="s-warn"><h2 id="s-warn">Warnings</h2>'
            f"<ul>{items}</ul>{table}</section>\n")


def _estimates_section(params: ItemParams) -> str:
    """Estimates with SEs; ``b``/``c`` columns only when the bank has such items."""
    n = len(params.item_ids)
    poly = np.array([str(m) not in DICHOTOMOUS for m in params.model])
    has_dich = bool((~poly).any())
    has_c = bool(np.any(np.isin(params.model, catalogue.GUESSING)))
    k_max = int(max((params.n_categories[i] - 1 for i in range(n) if poly[i]), default=0))
    se_a = params.se_a if params.se_a is not None else np.full(n, np.nan)
    se_b = params.se_b if params.se_b is not None else np.full(np.shape(params.b), np.nan)
    se_c = params.se_c if params.se_c is not None else np.full(n, np.nan)
    header = ["Item", "Model", "a", "SE(a)"]
    header += ["b", "SE(b)"] if has_dich else []
    header += ["c", "SE(c)"] if has_c else []
    for k in range(1, k_max + 1):
        header += [f"b{k}", f"SE(b{k})"]
    rows = []
    for i in range(n):
        row: list[Any] = [params.item_ids[i], params.model[i], _fmt(params.a[i]),
                          _fmt(se_a[i])]
        if has_dich:
            row += ["–", "–"] if poly[i] else [_fmt(params.b[i, 0]), _fmt(se_b[i, 0])]
        if has_c:
            row += ["–", "–"] if poly[i] else [_fmt(params.c[i]), _fmt(se_c[i])]
        for k in range(k_max):
            inside = poly[i] and k < params.n_categories[i] - 1
            row += [_fmt(params.b[i, k]), _fmt(se_b[i, k])] if inside else ["–", "–"]
        rows.append(row)
    note = ('<p class="note">Slope/difficulty parameterisation, logistic metric, D = 1. '
            "A dash means not applicable, or fixed (Rasch/PCM slope, anchored items).</p>")
    return ('<section aria-labelledby="s-est"><h2 id="s-est">Item estimates</h2>' + note
            + _table("Item parameter estimates with standard errors", header, rows)
            + "</section>\n")


def _fit_section(params: ItemParams, fit: Mapping[str, np.ndarray] | None) -> str:
    head = '<section aria-labelledby="s-fit"><h2 id="s-fit">Item fit</h2>'
    if not fit:
        return head + "<p>Item fit was not computed.</p></section>\n"
    lo, hi = MNSQ_LIMITS
    header = ["Item", "Infit MNSQ", "Outfit MNSQ", "S-X2", "S-X2 p", "Flag"]
    rows, flags = [], []
    nan = np.full(len(params.item_ids), np.nan)
    infit, outfit = fit.get("infit", nan), fit.get("outfit", nan)
    sx2, sx2_p = fit.get("sx2", nan), fit.get("sx2_p", nan)
    n_flagged = 0
    for i, item in enumerate(params.item_ids):
        reasons = []
        bad_in = not math.isnan(infit[i]) and not lo <= infit[i] <= hi
        bad_out = not math.isnan(outfit[i]) and not lo <= outfit[i] <= hi
        bad_p = not math.isnan(sx2_p[i]) and sx2_p[i] < SX2_ALPHA
        if bad_in:
            reasons.append("infit")
        if bad_out:
            reasons.append("outfit")
        if bad_p:
            reasons.append("S-X2")
        n_flagged += bool(reasons)
        rows.append([item, _fmt(infit[i], 2), _fmt(outfit[i], 2), _fmt(sx2[i], 2),
                     _fmt(sx2_p[i], 3), "misfit: " + ", ".join(reasons) if reasons else "–"])
        flags.append([False, bad_in, bad_out, False, bad_p, bool(reasons)])
    note = (f'<p class="note">Flagged: mean-square outside {lo}–{hi}, or S-X2 p &lt; '
            f"{SX2_ALPHA}. {n_flagged} of {len(rows)} items flagged.</p>")
    return head + note + _table("Item fit statistics", header, rows, flags) + "</section>\n"


def _icc_section(params: ItemParams, theta: np.ndarray) -> str:
    prob = probabilities(params, theta)  # (n_theta, n_items, max_cat)
    n = len(params.item_ids)
    parts = [('<section aria-labelledby="s-icc"><h2 id="s-icc">Item characteristic curves</h2>'
             '<p class="note">Dichotomous items: probability of a correct answer. '
             "Polytomous items: probability of each score category (line style = "
             "category).</p>")]
    for start in range(0, n, ITEMS_PER_FIGURE):
        idx = list(range(start, min(n, start + ITEMS_PER_FIGURE)))
        cols = min(4, len(idx))
        rows = math.ceil(len(idx) / cols)
        width, height = 2.4 * cols + 0.6, 1.8 * rows + 0.7
        fig = Figure(figsize=(width, height))
        # fixed margins instead of constrained layout: much faster for many panels
        fig.subplots_adjust(left=0.7 / width, right=1 - 0.1 / width, bottom=0.55 / height,
                            top=1 - 0.3 / height, wspace=0.08, hspace=0.35)
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        axes[0, 0].set_xticks([-4, -2, 0, 2, 4] if theta[0] <= -4 and theta[-1] >= 4
                              else np.linspace(theta[0], theta[-1], 5))
        axes[0, 0].set_yticks([0, 0.5, 1])
        axes[0, 0].set_ylim(-0.02, 1.02)
        for ax in axes.flat[len(idx):]:
            ax.set_visible(False)
        for ax, i in zip(axes.flat, idx, strict=False):
            model = str(params.model[i])
            ax.axhline(0.5, color="#bbbbbb", lw=0.6)
            if model in DICHOTOMOUS:
                ax.plot(theta, prob[:, i, 1], color=PALETTE[0], lw=1.6)
            else:
                for k in range(int(params.n_categories[i])):
                    ax.plot(theta, prob[:, i, k], color=PALETTE[k % len(PALETTE)],
                            ls=LINESTYLES[k % len(LINESTYLES)], lw=1.4, label=str(k))
                ax.legend(fontsize=6, title="score", title_fontsize=6, loc="center right",
                          frameon=False)
            ax.set_title(f"{params.item_ids[i]} ({model})", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.supxlabel("ability θ", fontsize=8)
        fig.supylabel("probability", fontsize=8)
        first, last = params.item_ids[idx[0]], params.item_ids[idx[-1]]
        alt = (f"Item characteristic curves for items {first} to {last}: probability of "
               f"each score against ability from {theta[0]:g} to {theta[-1]:g}.")
        parts.append(_figure_html(png_data_uri(fig), alt, f"Items {first}–{last}"))
    parts.append("</section>\n")
    return "".join(parts)


def _information_section(params: ItemParams, theta: np.ndarray) -> str:
    info = np.asarray(test_information(params, theta), dtype=float)
    with np.errstate(divide="ignore"):
        se = 1.0 / np.sqrt(info)
    peak = int(np.argmax(info))
    fig = Figure(figsize=(9, 3.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.9, wspace=0.28)
    ax_info, ax_se = fig.subplots(1, 2)
    ax_info.plot(theta, info, color=PALETTE[0], lw=1.8)
    ax_info.set(title="Test information", xlabel="ability θ", ylabel="information I(θ)")
    ax_se.plot(theta, se, color=PALETTE[1], ls="--", lw=1.8)
    ax_se.set(title="Standard error of measurement", xlabel="ability θ",
              ylabel="SE(θ) = 1/√I(θ)")
    ax_se.set_ylim(0, min(float(np.nanmax(se[np.isfinite(se)], initial=1.0)), 3.0) * 1.05)
    for ax in (ax_info, ax_se):
        ax.grid(alpha=0.3)
    alt = (f"Test information peaks at {info[peak]:.2f} at ability {theta[peak]:.2f}; the "
           f"standard error there is {se[peak]:.2f} and rises towards the ends of the scale.")
    table_rows = [[f"{t:g}", _fmt(i, 2), _fmt(s, 3)]
                  for t, i, s in zip(theta[::10], info[::10], se[::10], strict=True)]
    return ('<section aria-labelledby="s-info"><h2 id="s-info">Test information</h2>'
            + _figure_html(png_data_uri(fig), alt, "Test information and standard error")
            + "<details><summary>Values</summary>"
            + _table("Test information and SE by ability", ["θ", "I(θ)", "SE(θ)"],
                     table_rows)
            + "</details></section>\n")


def _history_section(history: Any) -> str:
    values = history_values(history)
    head = ('<section aria-labelledby="s-hist"><h2 id="s-hist">Convergence history</h2>')
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return head + "<p>No iteration history was recorded.</p></section>\n"
    fig = Figure(figsize=(6, 3))
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.17, top=0.89)
    ax = fig.subplots()
    ax.plot(np.arange(1, values.size + 1), values, marker="o", ms=3, color=PALETTE[0])
    ax.set(xlabel="iteration", ylabel="marginal log-likelihood",
           title="Log-likelihood by EM iteration")
    ax.grid(alpha=0.3)
    alt = (f"Log-likelihood over {values.size} iterations, from {finite[0]:.2f} to "
           f"{finite[-1]:.2f}.")
    return head + _figure_html(png_data_uri(fig), alt, "Convergence history") + "</section>\n"


# ---------------------------------------------------------------------------- entry point

def build_report(params: ItemParams, *, title: str = "Calibration report",
                 summary: Mapping[str, Any] | None = None,
                 fit: Mapping[str, np.ndarray] | None = None,
                 history: Any = None,
                 theta: np.ndarray | None = None,
                 warnings: Sequence[str] = (),
                 excluded: Sequence[tuple[str, str]] = ()) -> str:
    """The complete report as an HTML string.

    Parameters
    ----------
    params : calibrated item parameters (with SEs when available)
    title : page title and main heading
    summary : ordered key -> value pairs shown first (model, engine, N, loglik, AIC, ...)
    fit : optional mapping with arrays (n_items,) for ``infit``, ``outfit``, ``sx2``,
        ``sx2_p`` (any subset)
    history : calibration history (numbers, or entries with ``loglik``), or None
    theta : (n_theta,) ability grid for the curves, default -4..4 in steps of 0.05
    warnings : lines shown in a Warnings section after the summary (anchors ignored, ...)
    excluded : (item id, reason) of items left out of the calibration, shown as a table
    """
    grid = np.linspace(-4.0, 4.0, 161) if theta is None else np.asarray(theta, dtype=float)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = dict(summary or {})
    info.setdefault("Items", len(params.item_ids))
    info.setdefault("Generated", stamp)
    nav = ('<nav aria-label="Sections"><ul>'
           '<li><a href="#s-summary">Summary</a></li><li><a href="#s-est">Item estimates</a></li>'
           '<li><a href="#s-fit">Item fit</a></li><li><a href="#s-icc">Item curves</a></li>'
           '<li><a href="#s-info">Test information</a></li>'
           '<li><a href="#s-hist">Convergence</a></li></ul></nav>')
    body = "".join([
        _summary_section(info),
        _warnings_section(warnings, excluded),
        _estimates_section(params),
        _fit_section(params, fit),
        _icc_section(params, grid),
        _information_section(params, grid),
        _history_section(history),
    ])
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            '<a class="skip" href="#main">Skip to content</a>\n'
            f'<header><h1>{_esc(title)}</h1>{nav}</header>\n<main id="main">\n{body}</main>\n'
            "</body>\n</html>\n")
