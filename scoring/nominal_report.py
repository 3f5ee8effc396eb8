"""Self-contained HTML report of a distractor analysis (``learningcity distractors --report``).

Same conventions as :mod:`scoring.report` (whose helpers it uses): one file, inline CSS,
option curves as embedded PNGs drawn with matplotlib's Agg canvas, tables with captions and
row headers, every picture with an ``alt`` text naming the attractive distractors, and
flags written out as text.  English, like the calibration report.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .nominal import DistractorAnalysis, NominalResult, option_probabilities
from .report import _CSS, LINESTYLES, PALETTE, _esc, _figure_html, _fmt, _table, png_data_uri

__all__ = ["build_distractor_report"]

#: Items per option-curve figure.
ITEMS_PER_FIGURE = 12


def _curves(fit: NominalResult, table: DistractorAnalysis,
            options: Sequence[Sequence[str]], theta: np.ndarray) -> str:
    """Option characteristic curves, ITEMS_PER_FIGURE panels per figure."""
    probs = option_probabilities(fit.params, theta)          # (T, J, K)
    out = []
    n_items = len(table.item_ids)
    for start in range(0, n_items, ITEMS_PER_FIGURE):
        items = range(start, min(start + ITEMS_PER_FIGURE, n_items))
        cols = 3
        rows = -(-len(items) // cols)
        fig = Figure(figsize=(10, 2.6 * rows))
        for n, j in enumerate(items):
            ax = fig.add_subplot(rows, cols, n + 1)
            for k, option in enumerate(options[j]):
                if not fit.params.chosen[j, k]:
                    continue
                label = option + (" (key)" if k == table.key[j] else "")
                ax.plot(theta, probs[:, j, k], color=PALETTE[k % len(PALETTE)],
                        linestyle=LINESTYLES[k % len(LINESTYLES)],
                        linewidth=2.4 if k == table.key[j] else 1.4, label=label)
            ax.set_title(str(table.item_ids[j]), fontsize=9)
            ax.set_ylim(0, 1)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="best")
        fig.supxlabel("ability θ", fontsize=8)
        fig.supylabel("P(option | θ)", fontsize=8)
        fig.tight_layout()
        flagged = [f"{table.item_ids[j]} {options[j][k]}" for j in items
                   for k in range(len(options[j])) if table.attractive[j, k]]
        alt = (f"Option curves of items {table.item_ids[items[0]]} to "
               f"{table.item_ids[items[-1]]}; the key drawn thickest. "
               + ("Attractive distractors: " + ", ".join(flagged) + "."
                  if flagged else "No attractive distractor."))
        out.append(_figure_html(png_data_uri(fig), alt, f"Option curves, items "
                                f"{start + 1}-{items[-1] + 1}"))
    return "".join(out)


def build_distractor_report(fit: NominalResult, table: DistractorAnalysis,
                            options: Sequence[Sequence[str]], *,
                            title: str = "Distractor analysis") -> str:
    """The report as an HTML string.

    Parameters
    ----------
    fit : the nominal-model calibration
    table : its :func:`scoring.nominal.analyse_distractors` table
    options : the option labels of each item (as in the response file)
    title : page title and main heading
    """
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = {"Items": len(table.item_ids), "Log-likelihood": round(fit.loglik, 3),
               "AIC": round(fit.aic, 2), "BIC": round(fit.bic, 2),
               "EM steps": fit.n_iter, "Converged": fit.converged,
               "Method": fit.method_note, "Generated": stamp}
    dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(_fmt(v))}</dd>" for k, v in summary.items())
    header = ["Item", "Option", "Key", "Chosen", "Share", "Mean θ of choosers", "Slope",
              "SE", "Slope − key's", "SE", "Note"]
    rows: list[list[Any]] = []
    flags: list[list[bool]] = []
    for j, item in enumerate(table.item_ids):
        for k, option in enumerate(options[j]):
            rows.append([str(item), option, "key" if k == table.key[j] else "",
                         int(table.n_chosen[j, k]), _fmt(table.share[j, k]),
                         _fmt(table.mean_theta[j, k]), _fmt(table.slope[j, k]),
                         _fmt(table.se_slope[j, k]), _fmt(table.slope_vs_key[j, k]),
                         _fmt(table.se_slope_vs_key[j, k]), str(table.note[j, k])])
            flags.append([False] * 10 + [bool(table.attractive[j, k])])
    theta = np.linspace(-4.0, 4.0, 161) * fit.latent_sd + fit.latent_mean
    body = (f'<section aria-labelledby="s-summary"><h2 id="s-summary">Summary</h2>'
            f"<dl>{dl}</dl></section>\n"
            f'<section aria-labelledby="s-opt"><h2 id="s-opt">Options</h2>'
            '<p class="note">An attractive distractor draws able persons: its slope '
            "exceeds the key's, or its probability still rises one SD above the mean "
            "ability.</p>"
            + _table("Options of each item", header, rows, flags) + "</section>\n"
            '<section aria-labelledby="s-curves"><h2 id="s-curves">Option curves</h2>'
            + _curves(fit, table, options, theta) + "</section>\n")
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f'<header><h1>{_esc(title)}</h1></header>\n<main id="main">\n{body}</main>\n'
            "</body>\n</html>\n")
