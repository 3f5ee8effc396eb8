"""Self-contained HTML report of a distractor analysis (``learningcity distractors --report``).

Same conventions as :mod:`scoring.report` (whose helpers it uses): one file, inline CSS,
option curves as embedded PNGs drawn with matplotlib's Agg canvas, tables with captions and
row headers, every picture with an ``alt`` text naming the attractive distractors, and
flags written out as text.  In zh-CN (default) or English (:mod:`scoring.translation`);
the pictures carry symbols and the option labels only.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .nominal import DistractorAnalysis, NominalResult, option_probabilities
from .report import _CSS, LINESTYLES, PALETTE, _esc, _figure_html, _fmt, _open, _table, png_data_uri
from .translation import html_lang, translator

__all__ = ["build_distractor_report"]

#: Items per option-curve figure.
ITEMS_PER_FIGURE = 12


def _notes(_: Callable[[str], str]) -> dict[str, str]:
    """The notes :func:`scoring.nominal.analyse_distractors` writes, translated."""
    return {"key": _("key"), "key (never chosen)": _("key (never chosen)"),
            "never chosen": _("never chosen"),
            "attractive: rising with ability": _("attractive: rising with ability"),
            "attractive: slope above the key's": _("attractive: slope above the key's"),
            "attractive: slope above the key's, rising with ability":
                _("attractive: slope above the key's, rising with ability")}


def _curves(fit: NominalResult, table: DistractorAnalysis,
            options: Sequence[Sequence[str]], theta: np.ndarray,
            _: Callable[[str], str]) -> str:
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
                label = option + (" *" if k == table.key[j] else "")
                ax.plot(theta, probs[:, j, k], color=PALETTE[k % len(PALETTE)],
                        linestyle=LINESTYLES[k % len(LINESTYLES)],
                        linewidth=2.4 if k == table.key[j] else 1.4, label=label)
            ax.set_title(str(table.item_ids[j]), fontsize=9)
            ax.set_ylim(0, 1)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="best")
        fig.supxlabel("θ", fontsize=8)
        fig.supylabel("P(option | θ)", fontsize=8)
        fig.tight_layout()
        flagged = [f"{table.item_ids[j]} {options[j][k]}" for j in items
                   for k in range(len(options[j])) if table.attractive[j, k]]
        alt = (_("Option curves of items {first} to {last}; the key (marked *) drawn "
                 "thickest.").format(first=table.item_ids[items[0]],
                                     last=table.item_ids[items[-1]]) + " "
               + (_("Attractive distractors: {options}.").format(options=", ".join(flagged))
                  if flagged else _("No attractive distractor.")))
        out.append(_figure_html(png_data_uri(fig), alt,
                                _("Option curves, items {first}–{last}").format(
                                    first=start + 1, last=items[-1] + 1)))
    return "".join(out)


def build_distractor_report(fit: NominalResult, table: DistractorAnalysis,
                            options: Sequence[Sequence[str]], *,
                            title: str | None = None, lang: str | None = None) -> str:
    """The report as an HTML string, in ``lang`` (zh_CN by default, or en).

    Parameters
    ----------
    fit : the nominal-model calibration
    table : its :func:`scoring.nominal.analyse_distractors` table
    options : the option labels of each item (as in the response file)
    title : page title and main heading (default "Distractor analysis", translated)
    lang : ``zh_CN`` (default) or ``en``
    """
    _ = translator(lang)
    title = _("Distractor analysis") if title is None else title
    notes = _notes(_)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = {_("Items"): len(table.item_ids), _("Log-likelihood"): round(fit.loglik, 3),
               "AIC": round(fit.aic, 2), "BIC": round(fit.bic, 2),
               _("EM cycles"): fit.n_iter,
               _("Converged"): _("yes") if fit.converged else _("no"),
               _("Method"): fit.method_note, _("Generated"): stamp}
    dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(_fmt(v))}</dd>" for k, v in summary.items())
    header = [_("Item"), _("Option"), _("Key"), _("Chosen"), _("Share"),
              _("Mean θ of choosers"), _("Slope"), "SE", _("Slope − key's"), "SE", _("Note")]
    rows: list[list[Any]] = []
    flags: list[list[bool]] = []
    for j, item in enumerate(table.item_ids):
        for k, option in enumerate(options[j]):
            rows.append([str(item), option, _("key") if k == table.key[j] else "",
                         int(table.n_chosen[j, k]), _fmt(table.share[j, k]),
                         _fmt(table.mean_theta[j, k]), _fmt(table.slope[j, k]),
                         _fmt(table.se_slope[j, k]), _fmt(table.slope_vs_key[j, k]),
                         _fmt(table.se_slope_vs_key[j, k]),
                         notes.get(str(table.note[j, k]), str(table.note[j, k]))])
            flags.append([False] * 10 + [bool(table.attractive[j, k])])
    theta = np.linspace(-4.0, 4.0, 161) * fit.latent_sd + fit.latent_mean
    explain = _("An attractive distractor draws able persons: its slope exceeds the "
                "key's, or its probability still rises one SD above the mean ability.")
    body = (_open("s-summary", _("Summary")) + f"<dl>{dl}</dl></section>\n"
            + _open("s-opt", _("Options")) + f'<p class="note">{_esc(explain)}</p>'
            + _table(_("Options of each item"), header, rows, flags) + "</section>\n"
            + _open("s-curves", _("Option curves"))
            + _curves(fit, table, options, theta, _) + "</section>\n")
    return ("<!DOCTYPE html>\n"
            f'<html lang="{html_lang(lang)}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f'<header><h1>{_esc(title)}</h1></header>\n<main id="main">\n{body}</main>\n'
            "</body>\n</html>\n")
