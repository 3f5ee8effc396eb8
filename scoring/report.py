"""Self-contained HTML calibration report for researchers, in zh-CN (default) or English.

One HTML file, no external resources: CSS is inline and every picture is a PNG drawn with
matplotlib's Agg canvas and embedded as ``data:image/png;base64``.  It can be mailed,
archived with the PARAMS.csv it describes, or opened offline.

Contents: a run summary, warnings, limited-information model fit (M2, RMSEA, SRMSR,
CFI/TLI), the item estimates with standard errors, the item fit table with plots of
observed against expected scores by ability group, item characteristic curves (category
curves for polytomous items), item information curves, the test information and
standard-error curves, the persons' estimated abilities against the latent density and
the quadrature grid, and the convergence history.

Words are in the HTML (translated by :mod:`scoring.translation`); the pictures carry
only symbols and numbers (θ, P, I(θ)), so they need no CJK font and read the same in
either language.

Accessibility: ``<html lang>`` set to the report's language, a heading per section,
tables with captions and ``scope`` on header cells, every picture has an ``alt`` text
that states what it shows (and the key numbers), curves are told apart by line style as
well as colour, and fit flags are written out as text rather than shown by colour alone.

Figures are built with :class:`matplotlib.figure.Figure` directly (not pyplot), so the
report never changes the process-wide matplotlib backend or leaks figures.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import catalogue
from .models import item_information, probabilities, test_information
from .params import DICHOTOMOUS, ItemParams
from .translation import html_lang, translator

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

Tr = Callable[[str], str]

def _open(anchor: str, heading: str) -> str:
    """The start of a section with its heading (the caller closes the section)."""
    return f'<section aria-labelledby="{anchor}"><h2 id="{anchor}">{_esc(heading)}</h2>'


def _summary_labels(_: Tr) -> dict[str, str]:
    """The run-summary keys the command line sends (English), with their translation."""
    keys = [_("Responses"), _("Model"), _("Engine"), _("Persons"), _("Items"),
            _("Anchor items"), _("Log-likelihood"), _("AIC"), _("BIC"), _("EM cycles"),
            _("Converged"), _("Method"), _("Latent mean"), _("Latent SD"),
            _("Quadrature points"), _("Latent density"), _("Generated")]
    english = ["Responses", "Model", "Engine", "Persons", "Items", "Anchor items",
               "Log-likelihood", "AIC", "BIC", "EM cycles", "Converged", "Method",
               "Latent mean", "Latent SD", "Quadrature points", "Latent density",
               "Generated"]
    return dict(zip(english, keys, strict=True))


def _summary_section(summary: Mapping[str, Any], _: Tr) -> str:
    labels = _summary_labels(_)
    answer = {True: _("yes"), False: _("no")}
    items = "".join(f"<dt>{_esc(labels.get(str(k), k))}</dt><dd>"
                    f"{_esc(answer[bool(v)] if isinstance(v, (bool, np.bool_)) else _fmt(v))}"
                    "</dd>" for k, v in summary.items())
    return (_open("s-summary", _("Summary"))
            + f"<dl>{items}</dl></section>\n")


def _warnings_section(warnings: Sequence[str], excluded: Sequence[tuple[str, str]],
                      _: Tr) -> str:
    """What the run left out or ignored, before the results (empty when nothing was)."""
    if not warnings and not excluded:
        return ""
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    table = ""
    if excluded:
        rows = "".join(f'<tr><th scope="row">{_esc(i)}</th><td class="text">{_esc(r)}</td></tr>'
                       for i, r in excluded)
        caption = _("Items left out ({n})").format(n=len(excluded))
        item, reason = _("Item"), _("Reason")
        table = (f"<table><caption>{_esc(caption)}</caption><thead><tr>"
                 f'<th scope="col">{_esc(item)}</th><th scope="col">{_esc(reason)}</th>'
                 f"</tr></thead><tbody>{rows}</tbody></table>")
    note = _("The messages are those the command printed (in English).")
    return (_open("s-warn", _("Warnings"))
            + f'<p class="note">{_esc(note)}</p><ul>{items}</ul>{table}</section>\n')


#: limits commonly used to read the limited-information fit indices (Maydeu-Olivares 2013)
RMSEA_CLOSE, SRMSR_CLOSE, CFI_GOOD = 0.05, 0.05, 0.95


def _model_fit_section(model_fit: Mapping[str, Any] | None, _: Tr) -> str:
    head = _open("s-model", _("Model fit"))
    if not model_fit:
        missing = _("Limited-information model fit (M2) was not computed: it needs "
                    "complete responses and at most 100 items.")
        return head + f"<p>{_esc(missing)}</p></section>\n"
    ci = model_fit.get("rmsea_ci")
    rows = [
        ["M2", _fmt(model_fit.get("m2"), 2), ""],
        [_("degrees of freedom"), _fmt(model_fit.get("df")), ""],
        ["p", _fmt(model_fit.get("p"), 4), _("p < 0.05: the model is rejected as exact")],
        ["RMSEA", _fmt(model_fit.get("rmsea"), 4),
         _("close fit when at most {limit}").format(limit=RMSEA_CLOSE)],
        [_("RMSEA 90 % interval"),
         "–" if ci is None else f"{_fmt(ci[0], 4)} – {_fmt(ci[1], 4)}", ""],
        ["SRMSR", _fmt(model_fit.get("srmsr"), 4),
         _("close fit when at most {limit}").format(limit=SRMSR_CLOSE)],
        ["CFI", _fmt(model_fit.get("cfi"), 4),
         _("good fit when at least {limit}").format(limit=CFI_GOOD)],
        ["TLI", _fmt(model_fit.get("tli"), 4),
         _("good fit when at least {limit}").format(limit=CFI_GOOD)],
    ]
    note = _("Maydeu-Olivares and Joe's M2 from the univariate and bivariate margins; "
             "RMSEA, SRMSR, CFI and TLI as in R's mirt::M2.")
    return (head + f'<p class="note">{_esc(note)}</p>'
            + _table(_("Limited-information goodness of fit"),
                     [_("Statistic"), _("Value"), _("Reading")], rows)
            + "</section>\n")


def _estimates_section(params: ItemParams, _: Tr) -> str:
    """Estimates with SEs; ``b``/``c`` columns only when the bank has such items."""
    n = len(params.item_ids)
    poly = np.array([str(m) not in DICHOTOMOUS for m in params.model])
    has_dich = bool((~poly).any())
    has_c = bool(np.any(np.isin(params.model, catalogue.GUESSING)))
    k_max = int(max((params.n_categories[i] - 1 for i in range(n) if poly[i]), default=0))
    se_a = params.se_a if params.se_a is not None else np.full(n, np.nan)
    se_b = params.se_b if params.se_b is not None else np.full(np.shape(params.b), np.nan)
    se_c = params.se_c if params.se_c is not None else np.full(n, np.nan)
    header = [_("Item"), _("Model"), "a", "SE(a)"]
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
    note = _("Slope/difficulty parameterisation, logistic metric, D = 1. A dash means not "
             "applicable, or fixed (Rasch/PCM slope, anchored items).")
    return (_open("s-est", _("Item estimates"))
            + f'<p class="note">{_esc(note)}</p>'
            + _table(_("Item parameter estimates with standard errors"), header, rows)
            + "</section>\n")


def _fit_section(params: ItemParams, fit: Mapping[str, np.ndarray] | None,
                 curves: Any, _: Tr) -> str:
    head = _open("s-fit", _("Item fit"))
    if not fit:
        return (head + "<p>" + _esc(_("Item fit was not computed.")) + "</p>"
                + _empirical_plots(curves, _) + "</section>\n")
    lo, hi = MNSQ_LIMITS
    header = [_("Item"), _("Infit MNSQ"), _("Outfit MNSQ"), "S-X2", _("S-X2 p"), _("Flag")]
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
                     _fmt(sx2_p[i], 3),
                     _("misfit: {what}").format(what=", ".join(reasons)) if reasons else "–"])
        flags.append([False, bad_in, bad_out, False, bad_p, bool(reasons)])
    note = _("Flagged: mean-square outside {lo}–{hi}, or S-X2 p < {alpha}. {flagged} of "
             "{n} items flagged.").format(lo=lo, hi=hi, alpha=SX2_ALPHA, flagged=n_flagged,
                                           n=len(rows))
    return (head + f'<p class="note">{_esc(note)}</p>'
            + _table(_("Item fit statistics"), header, rows, flags)
            + _empirical_plots(curves, _) + "</section>\n")


def _grid_figure(n_panels: int) -> tuple[Figure, np.ndarray]:
    """A figure of small panels (at most 4 across) sharing both axes, fixed margins
    (much faster than constrained layout for many panels)."""
    cols = min(4, n_panels)
    rows = math.ceil(n_panels / cols)
    width, height = 2.4 * cols + 0.6, 1.8 * rows + 0.7
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.1 / width, bottom=0.55 / height,
                        top=1 - 0.3 / height, wspace=0.08, hspace=0.35)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _empirical_plots(curves: Any, _: Tr) -> str:
    """Observed (points, ±2 model SE) against expected (line) proportion of the maximum
    score by ability group, per item; figures carry symbols only, words are in the HTML."""
    if curves is None:
        return ""
    ids = [str(i) for i in curves.item_ids]
    parts = ["<h3>" + _esc(_("Observed and expected scores by ability group")) + "</h3>",
             '<p class="note">'
             + _esc(_("Each panel: the item's respondents in {g} equal-size groups by their "
                      "ability estimated from the other items (EAP). Points: observed mean "
                      "score as a share of the maximum, bars ±2 model standard errors; "
                      "line: the model's expected share given the other answers. Points far "
                      "outside the bars show where the item misfits.")
                    .format(g=curves.theta.shape[1])) + "</p>"]
    for start in range(0, len(ids), ITEMS_PER_FIGURE):
        idx = list(range(start, min(len(ids), start + ITEMS_PER_FIGURE)))
        fig, axes = _grid_figure(len(idx))
        axes[0, 0].set_ylim(-0.02, 1.02)
        axes[0, 0].set_yticks([0, 0.5, 1])
        worst = []
        for ax, j in zip(axes.flat, idx, strict=False):
            t, o, e, s = (curves.theta[j], curves.observed[j], curves.expected[j],
                          curves.se[j])
            ax.plot(t, e, color=PALETTE[0], lw=1.5)
            ax.errorbar(t, o, yerr=2 * s, fmt="o", ms=3, color=PALETTE[1], lw=0.8,
                        capsize=1.5)
            ax.set_title(ids[j], fontsize=8)
            ax.tick_params(labelsize=7)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.nanmax(np.abs(o - e) / s, initial=0.0)
            worst.append((float(z), ids[j]))
        fig.supxlabel("θ", fontsize=8)
        fig.supylabel("E[X] / max", fontsize=8)
        z, item = max(worst)
        first, last = ids[idx[0]], ids[idx[-1]]
        alt = _("Observed against expected scores by ability group for items {first} to "
                "{last}; the largest standardised gap is {z} (item {item}).").format(
                    first=first, last=last, z=f"{z:.1f}", item=item)
        parts.append(_figure_html(png_data_uri(fig), alt,
                                  _("Items {first}–{last}").format(first=first, last=last)))
    return "".join(parts)


def _icc_section(params: ItemParams, theta: np.ndarray, _: Tr) -> str:
    prob = probabilities(params, theta)  # (n_theta, n_items, max_cat)
    n = len(params.item_ids)
    parts = [_open("s-icc", _("Item characteristic curves")) + '<p class="note">'
             + _esc(_("Dichotomous items: probability of a correct answer. Polytomous items: "
                      "probability of each score category k (line style = category)."))
             + "</p>"]
    for start in range(0, n, ITEMS_PER_FIGURE):
        idx = list(range(start, min(n, start + ITEMS_PER_FIGURE)))
        fig, axes = _grid_figure(len(idx))
        axes[0, 0].set_xticks([-4, -2, 0, 2, 4] if theta[0] <= -4 and theta[-1] >= 4
                              else np.linspace(theta[0], theta[-1], 5))
        axes[0, 0].set_yticks([0, 0.5, 1])
        axes[0, 0].set_ylim(-0.02, 1.02)
        for ax, i in zip(axes.flat, idx, strict=False):
            model = str(params.model[i])
            ax.axhline(0.5, color="#bbbbbb", lw=0.6)
            if model in DICHOTOMOUS:
                ax.plot(theta, prob[:, i, 1], color=PALETTE[0], lw=1.6)
            else:
                for k in range(int(params.n_categories[i])):
                    ax.plot(theta, prob[:, i, k], color=PALETTE[k % len(PALETTE)],
                            ls=LINESTYLES[k % len(LINESTYLES)], lw=1.4, label=str(k))
                ax.legend(fontsize=6, title="k", title_fontsize=6, loc="center right",
                          frameon=False)
            ax.set_title(f"{params.item_ids[i]} ({model})", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.supxlabel("θ", fontsize=8)
        fig.supylabel("P(X = k | θ)", fontsize=8)
        first, last = params.item_ids[idx[0]], params.item_ids[idx[-1]]
        alt = _("Item characteristic curves for items {first} to {last}: probability of "
                "each score against ability from {lo} to {hi}.").format(
                    first=first, last=last, lo=f"{theta[0]:g}", hi=f"{theta[-1]:g}")
        parts.append(_figure_html(png_data_uri(fig), alt,
                                  _("Items {first}–{last}").format(first=first, last=last)))
    parts.append("</section>\n")
    return "".join(parts)


def _item_information_section(params: ItemParams, theta: np.ndarray, _: Tr) -> str:
    """Each item's information curve, with the ability where it measures best."""
    info = np.asarray(item_information(params, theta), dtype=float)  # (n_theta, n_items)
    n = len(params.item_ids)
    top = float(np.nanmax(info, initial=0.0)) * 1.05 or 1.0
    parts = [_open("s-iinfo", _("Item information curves")) + '<p class="note">'
             + _esc(_("How precisely each item measures at each ability; all panels share "
                      "the vertical scale, so flat panels are items that add little."))
             + "</p>"]
    rows = []
    for start in range(0, n, ITEMS_PER_FIGURE):
        idx = list(range(start, min(n, start + ITEMS_PER_FIGURE)))
        fig, axes = _grid_figure(len(idx))
        axes[0, 0].set_ylim(0, top)
        for ax, i in zip(axes.flat, idx, strict=False):
            ax.plot(theta, info[:, i], color=PALETTE[2], lw=1.6)
            ax.set_title(str(params.item_ids[i]), fontsize=8)
            ax.tick_params(labelsize=7)
        fig.supxlabel("θ", fontsize=8)
        fig.supylabel("I(θ)", fontsize=8)
        first, last = params.item_ids[idx[0]], params.item_ids[idx[-1]]
        best = max(idx, key=lambda i: float(np.nanmax(info[:, i])))
        alt = _("Item information curves for items {first} to {last}; the most "
                "informative is {item}, peaking at {peak} at ability {at}.").format(
                    first=first, last=last, item=params.item_ids[best],
                    peak=f"{np.nanmax(info[:, best]):.2f}",
                    at=f"{theta[int(np.nanargmax(info[:, best]))]:.2f}")
        parts.append(_figure_html(png_data_uri(fig), alt,
                                  _("Items {first}–{last}").format(first=first, last=last)))
    for i in range(n):
        peak = int(np.nanargmax(info[:, i])) if np.isfinite(info[:, i]).any() else 0
        rows.append([params.item_ids[i], _fmt(float(info[peak, i]), 3),
                     _fmt(float(theta[peak]), 2)])
    parts.append("<details><summary>" + _esc(_("Values")) + "</summary>"
                 + _table(_("Maximum information of each item"),
                          [_("Item"), _("maximum I(θ)"), _("at θ")], rows) + "</details>")
    parts.append("</section>\n")
    return "".join(parts)


def _information_section(params: ItemParams, theta: np.ndarray, _: Tr) -> str:
    info = np.asarray(test_information(params, theta), dtype=float)
    with np.errstate(divide="ignore"):
        se = 1.0 / np.sqrt(info)
    peak = int(np.argmax(info))
    fig = Figure(figsize=(9, 3.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.9, wspace=0.28)
    ax_info, ax_se = fig.subplots(1, 2)
    ax_info.plot(theta, info, color=PALETTE[0], lw=1.8)
    ax_info.set(title="I(θ)", xlabel="θ")
    ax_se.plot(theta, se, color=PALETTE[1], ls="--", lw=1.8)
    ax_se.set(title="SE(θ) = 1/√I(θ)", xlabel="θ")
    ax_se.set_ylim(0, min(float(np.nanmax(se[np.isfinite(se)], initial=1.0)), 3.0) * 1.05)
    for ax in (ax_info, ax_se):
        ax.grid(alpha=0.3)
    alt = _("Test information peaks at {peak} at ability {at}; the standard error there is "
            "{se} and rises towards the ends of the scale.").format(
                peak=f"{info[peak]:.2f}", at=f"{theta[peak]:.2f}", se=f"{se[peak]:.2f}")
    table_rows = [[f"{t:g}", _fmt(i, 2), _fmt(s, 3)]
                  for t, i, s in zip(theta[::10], info[::10], se[::10], strict=True)]
    return (_open("s-info", _("Test information"))
            + _figure_html(png_data_uri(fig), alt,
                           _("Test information (left) and standard error of measurement "
                             "(right)"))
            + "<details><summary>" + _esc(_("Values")) + "</summary>"
            + _table(_("Test information and SE by ability"), ["θ", "I(θ)", "SE(θ)"],
                     table_rows)
            + "</details></section>\n")


def _persons_section(persons: Mapping[str, Any] | None, _: Tr) -> str:
    """Estimated abilities against the calibrated latent density and the quadrature grid:
    a grid too coarse for the persons' posteriors, or a density unlike the persons',
    shows here."""
    if not persons or persons.get("theta") is None:
        return ""
    theta = np.asarray(persons["theta"], dtype=float)
    theta = theta[np.isfinite(theta)]
    nodes = np.asarray(persons.get("nodes", ()), dtype=float)
    weights = persons.get("weights")
    mean, sd = float(persons.get("mean", 0.0)), float(persons.get("sd", 1.0))
    fig = Figure(figsize=(9, 3.4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.95)
    ax = fig.subplots()
    lo, hi = (float(nodes[0]), float(nodes[-1])) if nodes.size else (-4.0, 4.0)
    lo, hi = max(lo, -6.0), min(hi, 6.0)
    ax.hist(theta, bins=60, range=(lo, hi), density=True, color="#cfd8e3",
            edgecolor="#6b7c93", lw=0.4)
    x = np.linspace(lo, hi, 400)
    ax.plot(x, np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)),
            color=PALETTE[0], lw=1.8)
    if weights is not None and nodes.size > 1:
        w = np.asarray(weights, dtype=float)
        ax.plot(nodes, w / (w.sum() * np.gradient(nodes)), color=PALETTE[1], ls="--",
                lw=1.6)
    if nodes.size:
        ax.plot(nodes, np.zeros_like(nodes), "|", color="#000000", ms=8, mew=0.8)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("θ")
    ax.grid(alpha=0.3)
    spacing = float(np.median(np.diff(nodes))) if nodes.size > 1 else math.nan
    post_sd = persons.get("posterior_sd")
    alt = _("Histogram of {n} estimated abilities (mean {m}, SD {s}) with the calibrated "
            "latent density (mean {lm}, SD {ls}) and the {q} quadrature points.").format(
                n=theta.size, m=f"{theta.mean():.2f}" if theta.size else "–",
                s=f"{theta.std():.2f}" if theta.size else "–", lm=f"{mean:.2f}",
                ls=f"{sd:.2f}", q=nodes.size)
    lines = [_("Bars: estimated abilities (EAP). Solid line: the calibrated normal latent "
               "density. Dashed line (when estimated): the empirical-histogram density. "
               "Ticks at the bottom: the quadrature points.")]
    if nodes.size > 1:
        lines.append(_("Grid spacing {h}").format(h=f"{spacing:.3f}")
                     + ("" if post_sd is None else
                        "; " + _("median posterior SD of the persons {s}").format(
                            s=f"{float(post_sd):.3f}")) + ".")
        if post_sd is not None and spacing > float(post_sd):
            lines.append(_("The grid is coarser than the persons' posteriors: calibrate "
                           "again with more quadrature points (--n-quad)."))
    return (_open("s-persons", _("Person distribution"))
            + "".join(f'<p class="note">{_esc(line)}</p>' for line in lines)
            + _figure_html(png_data_uri(fig), alt,
                           _("Estimated abilities, latent density and quadrature"))
            + "</section>\n")


def _history_section(history: Any, _: Tr) -> str:
    values = history_values(history)
    head = _open("s-hist", _("Convergence history"))
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return head + "<p>" + _esc(_("No iteration history was recorded.")) + "</p></section>\n"
    fig = Figure(figsize=(6, 3))
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.17, top=0.92)
    ax = fig.subplots()
    ax.plot(np.arange(1, values.size + 1), values, marker="o", ms=3, color=PALETTE[0])
    ax.set(xlabel="EM", ylabel="log L")
    ax.grid(alpha=0.3)
    alt = _("Log-likelihood over {n} iterations, from {first} to {last}.").format(
        n=values.size, first=f"{finite[0]:.2f}", last=f"{finite[-1]:.2f}")
    return head + _figure_html(png_data_uri(fig), alt,
                               _("Marginal log-likelihood by EM cycle")) + "</section>\n"


# ---------------------------------------------------------------------------- entry point

def build_report(params: ItemParams, *, title: str | None = None,
                 summary: Mapping[str, Any] | None = None,
                 fit: Mapping[str, np.ndarray] | None = None,
                 history: Any = None,
                 theta: np.ndarray | None = None,
                 warnings: Sequence[str] = (),
                 excluded: Sequence[tuple[str, str]] = (),
                 model_fit: Mapping[str, Any] | None = None,
                 curves: Any = None,
                 persons: Mapping[str, Any] | None = None,
                 lang: str | None = None) -> str:
    """The complete report as an HTML string, in ``lang`` (zh_CN by default, or en).

    Parameters
    ----------
    params : calibrated item parameters (with SEs when available)
    title : page title and main heading (default: "Calibration report", translated)
    summary : ordered key -> value pairs shown first; the keys the command line sends
        (:func:`_summary_labels`) are translated, others shown as given
    fit : optional mapping with arrays (n_items,) for ``infit``, ``outfit``, ``sx2``,
        ``sx2_p`` (any subset)
    history : calibration history (numbers, or entries with ``loglik``), or None
    theta : (n_theta,) ability grid for the curves, default -4..4 in steps of 0.05
    warnings : lines shown in a Warnings section after the summary (anchors ignored, ...)
    excluded : (item id, reason) of items left out of the calibration, shown as a table
    model_fit : ``m2, df, p, rmsea, rmsea_ci, srmsr, cfi, tli`` (limited-information fit)
    curves : :class:`scoring.fit.EmpiricalCurves` for the item-fit plots
    persons : ``theta`` (EAP per person), ``nodes`` and optionally ``weights`` of the
        quadrature, ``mean``/``sd`` of the latent density, ``posterior_sd`` (median)
    lang : ``zh_CN`` (default) or ``en``
    """
    _ = translator(lang)
    grid = np.linspace(-4.0, 4.0, 161) if theta is None else np.asarray(theta, dtype=float)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = _("Calibration report") if title is None else title
    info = dict(summary or {})
    info.setdefault("Items", len(params.item_ids))
    info.setdefault("Generated", stamp)
    links = [("s-summary", _("Summary")), ("s-model", _("Model fit")),
             ("s-est", _("Item estimates")), ("s-fit", _("Item fit")),
             ("s-icc", _("Item curves")), ("s-iinfo", _("Item information curves")),
             ("s-info", _("Test information"))]
    if persons:
        links.append(("s-persons", _("Person distribution")))
    links.append(("s-hist", _("Convergence")))
    nav = ('<nav aria-label="' + _esc(_("Sections")) + '"><ul>'
           + "".join(f'<li><a href="#{a}">{_esc(t)}</a></li>' for a, t in links)
           + "</ul></nav>")
    body = "".join([
        _summary_section(info, _),
        _warnings_section(warnings, excluded, _),
        _model_fit_section(model_fit, _),
        _estimates_section(params, _),
        _fit_section(params, fit, curves, _),
        _icc_section(params, grid, _),
        _item_information_section(params, grid, _),
        _information_section(params, grid, _),
        _persons_section(persons, _),
        _history_section(history, _),
    ])
    return ("<!DOCTYPE html>\n"
            f'<html lang="{html_lang(lang)}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f'<a class="skip" href="#main">' + _esc(_("Skip to content")) + f'</a>\n'
            f'<header><h1>{_esc(title)}</h1>{nav}</header>\n<main id="main">\n{body}</main>\n'
            "</body>\n</html>\n")
