"""Offline command line of ``scoring``: ``calibrate``, ``score``, ``dif``, ``link`` and
``distractors``.

The commands are plain click commands registered in setup.cfg under the entry-point group
``learningcity.commands``, so they run as ``learningcity calibrate ...``; this module
imports nothing from the web application.  ``python -m scoring.cli COMMAND ...`` runs
them without the ``learningcity`` root command.

Each command is a thin shell over library calls:

* read and check every input first (:mod:`scoring.io`); a bad file stops with a
  ``click.ClickException`` (exit status 1) naming file, row and column, before anything
  is computed or written;
* compute with :mod:`scoring.calibration`, :mod:`scoring.estimation`, ...;
* write outputs through a temporary file renamed on success (:func:`scoring.io.atomic_write`),
  so a failed run leaves no output behind.

Progress bars (tqdm) and informational messages go to stderr; ``--quiet`` silences them.
File formats are documented in :mod:`scoring.io`.

Imports: each command imports the library modules it runs inside its own function, for
the start-up cost: ``import scoring.cli`` takes 72 ms, with calibration, estimation, fit,
report, plausible, dif, linking and girth_engine 797 ms (scipy.stats and matplotlib
mostly; best of 5 fresh processes on the 2-core machine), which every
``learningcity COMMAND`` would pay for modules it does not use.
"""
from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from typing import Any

import click
import numpy as np

from . import catalogue
from .io import (
    InputError,
    ResponseData,
    atomic_write,
    format_params,
    read_params,
    read_responses,
    write_params,
    write_scores,
    write_table,
)
from .params import DICHOTOMOUS, MODELS, ItemParams

__all__ = ["calibrate", "dif", "distractors", "link", "main", "score"]

ENGINES = catalogue.ENGINES
SCORE_METHODS = ("eap", "map", "mle", "wle")
DIF_METHODS = ("mh", "logistic", "both", "lr")
LINK_METHODS = ("mean-mean", "mean-sigma", "stocking-lord", "haebara")

class ModelName(click.ParamType):
    """An IRT model name or alias of :mod:`scoring.catalogue`, passed on canonical."""

    name = "model"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(MODELS) + "]"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        try:
            return catalogue.canonical(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_existing_file = click.Path(exists=True, dir_okay=False)
_output_file = click.Path(dir_okay=False, writable=True)


# ---------------------------------------------------------------------------- helpers

@contextmanager
def _user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn InputError (and the given library error types) into a click error message."""
    try:
        yield
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    except kinds as exc:
        raise click.ClickException(str(exc)) from exc


def _check_outputs(*paths: str | None) -> None:
    """Fail before any computation if an output cannot be created (missing directory)."""
    for path in paths:
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise click.ClickException(f"cannot write {path}: directory {directory} "
                                       "does not exist")


@contextmanager
def _output_errors() -> Iterator[None]:
    """An OS error while writing (disk full, permissions) becomes a message."""
    try:
        yield
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or 'output'}: "
                                   f"{exc.strerror or exc}") from exc


def _write_outputs(outputs: Mapping[str, str]) -> None:
    """Write several text files all-or-nothing: every temporary file is complete before
    any is renamed into place (see :func:`scoring.io.atomic_write`)."""
    with _output_errors(), ExitStack() as stack:
        handles = [(stack.enter_context(atomic_write(path)), text)
                   for path, text in outputs.items()]
        for handle, text in handles:
            handle.write(text)


def _info(quiet: bool, message: str) -> None:
    """An informational line on stderr (silenced by --quiet)."""
    if not quiet:
        click.echo(message, err=True)


def _warn(message: str) -> None:
    """A warning on stderr, shown even with --quiet."""
    click.echo(f"warning: {message}", err=True)


class _EMProgress:
    """tqdm bar fed by calibrate's per-cycle callback (an IterationRecord)."""

    def __init__(self, quiet: bool, max_iter: int) -> None:
        # start-up cost: tqdm takes 10-35 ms to import; only a calibration shows a bar
        from tqdm import tqdm

        self.bar = tqdm(total=max_iter, desc="EM", unit="cycle", file=sys.stderr,
                        disable=quiet, leave=False, dynamic_ncols=True)

    def __call__(self, record: Any) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loglik=f"{record.loglik:.2f}", change=f"{record.max_change:.1e}",
                             refresh=False)

    def close(self) -> None:
        self.bar.close()


def _match_params(params: ItemParams, params_path: str, data: ResponseData) -> ItemParams:
    """``params`` reordered to the item columns of ``data``; every item on both sides.

    Extra parameters and items without parameters are both refused, because silently
    scoring on a subset of the items would change what the scores mean.
    """
    data_items = [str(i) for i in data.item_ids]
    bank_items = {str(i) for i in params.item_ids}
    missing = [item for item in data_items if item not in bank_items]
    if missing:
        more = f" (nor have {len(missing) - 1} more items)" if len(missing) > 1 else ""
        raise InputError(data.path, None, missing[0],
                         f"item has no parameters in {params_path}{more}")
    extra = sorted(bank_items - set(data_items))
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise InputError(params_path, None, "item_id",
                         f"item '{extra[0]}'{more} not in {data.path}")
    return params.subset(data_items)


def _max_scores(params: ItemParams) -> dict[str, int]:
    """Highest score per item id allowed by a bank (``n_categories - 1``)."""
    return {str(i): int(k) - 1 for i, k in zip(params.item_ids, params.n_categories, strict=True)}


# ---------------------------------------------------------------------------- calibrate

class _Pair(click.ParamType):
    """Two comma-separated numbers ``"x,y"``, or ``none`` (returned as None)."""

    name = "x,y"

    def __init__(self, what: str, allow_none: bool = True, positive: tuple[bool, bool]
                 = (False, False)) -> None:
        self.what = what
        self.allow_none = allow_none
        self.positive = positive

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "X,Y" + ("|none" if self.allow_none else "")

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[float, float] | None:
        if value is None or isinstance(value, tuple):
            return value
        text = str(value).strip()
        if self.allow_none and text.lower() == "none":
            return None
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) != 2:
                raise ValueError
            pair = (float(parts[0]), float(parts[1]))
        except ValueError:
            self.fail(f"{text!r}: expected {self.what} as two numbers 'x,y'"
                      + (" or 'none'" if self.allow_none else ""), param, ctx)
        if not all(np.isfinite(pair)) or any(
                need and v <= 0 for need, v in zip(self.positive, pair, strict=True)):
            self.fail(f"{text!r}: {self.what} must be finite"
                      + (" and positive" if any(self.positive) else ""), param, ctx)
        return pair


class _QuadPoints(click.ParamType):
    """``auto`` or a whole number of quadrature points (at least 5)."""

    name = "n|auto"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        try:
            n = int(text)
        except ValueError:
            self.fail(f"{value!r}: expected 'auto' or a whole number", param, ctx)
        if n < 5:
            self.fail(f"{n}: at least 5 quadrature points are needed", param, ctx)
        return n


#: calibrate options that only the native engine takes (refused with --engine girth)
_NATIVE_ONLY = ("slope_prior", "guess_prior", "n_quad", "theta_range", "tol", "max_iter",
                "collapse_unused")


@click.command()
@click.argument("responses", type=_existing_file)
@click.option("--model", type=ModelName(), required=True,
              help="IRT model of the items to calibrate (anchors keep their own model); "
                   "aliases such as 'graded' are accepted.")
@click.option("--out", "out_path", type=_output_file, required=True,
              help="PARAMS.csv to write.")
@click.option("--id-col", help="Person-id column (default: person_id if present).")
@click.option("--group-col",
              help="Group column: multi-group calibration with a mean and SD per group "
                   "(the group column of a long file is used without this option).")
@click.option("--anchors", "anchors_path", type=_existing_file,
              help="PARAMS.csv of fixed items that set the scale; anchors without "
                   "responses in RESPONSES are listed and ignored.")
@click.option("--min-responses", type=click.IntRange(min=1), default=10, show_default=True,
              help="Items with fewer responses are left out (listed as a warning), like "
                   "items whose responses are all the same.")
@click.option("--engine", type=click.Choice(ENGINES), default="native", show_default=True,
              help="native: MML-EM of scoring.calibration; girth: the girth package.")
@click.option("--slope-prior", type=_Pair("meanlog,sdlog", positive=(False, True)),
              default="none", show_default=True,
              help="Lognormal prior on the slopes, 'meanlog,sdlog' (e.g. 0,0.5: finite "
                   "slopes for small or sparse data), or none.")
@click.option("--guess-prior", type=_Pair("alpha,beta", positive=(True, True)),
              default="5,17", show_default=True,
              help="Beta prior on the 3PL lower asymptote c, 'alpha,beta', or none.")
@click.option("--n-quad", type=_QuadPoints(), default="auto", show_default=True,
              help="Quadrature points: auto (spacing at most the typical posterior "
                   "SD, 41..201) or a number.")
@click.option("--theta-range", type=_Pair("lo,hi", allow_none=False), default="-6,6",
              show_default=True, help="Range of the quadrature grid.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1e-4,
              show_default=True, help="EM convergence tolerance.")
@click.option("--max-iter", type=click.IntRange(min=1), default=500, show_default=True,
              help="Most EM cycles.")
@click.option("--se/--no-se", "compute_se", default=True, show_default=True,
              help="Standard errors (observed information).")
@click.option("--fit/--no-fit", "compute_fit", default=True, show_default=True,
              help="Item fit (infit/outfit, S-X2).")
@click.option("--collapse-unused", is_flag=True,
              help="Merge a category nobody chose with its neighbour (the categories "
                   "above move down; PARAMS.csv says so in the item's warning).")
@click.option("--report", "report_path", type=_output_file,
              help="Also write a self-contained HTML report.")
@click.option("--density", type=click.Choice(("normal", "eh")), default="normal",
              show_default=True, help="Latent density: normal, or an empirical histogram "
                                      "estimated with the items (skewed populations).")
@click.option("--lang", type=click.Choice(["zh_CN", "en"]), default="zh_CN", show_default=True,
              help="Language of the HTML report.")
@click.option("--quiet", is_flag=True, help="No progress bar or messages (for scripts).")
def calibrate(responses: str, model: str, out_path: str, id_col: str | None,
              group_col: str | None, anchors_path: str | None, min_responses: int,
              engine: str, slope_prior: tuple[float, float] | None,
              guess_prior: tuple[float, float] | None, n_quad: int | str,
              theta_range: tuple[float, float], tol: float, max_iter: int,
              compute_se: bool, compute_fit: bool, collapse_unused: bool,
              report_path: str | None, density: str, lang: str, quiet: bool) -> None:
    """Calibrate item parameters from RESPONSES.csv and write PARAMS.csv.

    RESPONSES is wide (one row per person, one column per item, empty = not
    administered) or long (person,item,score[,group]).  PARAMS.csv gets the estimates,
    their standard errors, item fit (infit/outfit mean squares, S-X2), the estimated
    latent distribution (latent_mean, latent_sd: Rasch and PCM estimate the SD; with
    groups, the pooled distribution of all persons), which `score` uses as its prior,
    and a warning column when some item has one (estimate at a bound, large SE, not
    linked to the other items, categories merged).

    Items that cannot be estimated (all responses the same, fewer than --min-responses
    responses, an empty category without --collapse-unused) are left out of PARAMS.csv,
    and anchors that were not answered are ignored; both are listed as warnings (and in
    the report).  Hard data (few persons, sparse or separating responses) give bounded
    estimates and warnings on stderr naming the items, not a failed run.
    """
    _check_outputs(out_path, report_path)
    if engine == "girth":
        _check_girth_model(model)
        if anchors_path or group_col or density != "normal":
            raise click.UsageError("--engine girth supports neither --anchors, "
                                   "--group-col nor --density eh; use --engine native")
        ctx = click.get_current_context()
        given = [name for name in _NATIVE_ONLY
                 if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError("--engine girth does not take "
                                   + ", ".join("--" + n.replace("_", "-") for n in given)
                                   + "; use --engine native")
    with _user_errors():
        anchors = read_params(anchors_path) if anchors_path else None
        # dichotomous models need 0/1 scores; anchors allow their own categories
        data = read_responses(responses, id_col=id_col, group_col=group_col,
                              max_scores=_max_scores(anchors) if anchors else None,
                              default_max=1 if model in DICHOTOMOUS else None)
        ignored: list[str] = []
        if anchors is not None:
            anchors, ignored = _usable_anchors(anchors, anchors_path, data)
        anchor_ids = [str(i) for i in anchors.item_ids] if anchors is not None else []
        data, excluded = _without_unestimable(data, anchor_ids, ignored, min_responses,
                                              collapse_unused)
    warnings = _screening_warnings(excluded, ignored, responses)
    for message in warnings:
        _warn(message)
    if engine == "girth" and data.groups is not None:
        raise click.UsageError(f"{responses} has a group column; --engine girth supports "
                               "single-group calibration only; use --engine native")

    _info(quiet, f"{responses}: {data.n_persons} persons, {data.n_items} items"
                 + (f", {len(anchor_ids)} anchors" if anchor_ids else "")
                 + (f", groups {', '.join(sorted(set(data.groups)))}"
                    if data.groups is not None else ""))
    options = {"priors": (slope_prior, guess_prior), "n_quad": n_quad,
               "theta_range": theta_range, "tol": tol, "max_iter": max_iter,
               "compute_se": compute_se, "collapse_unused": collapse_unused,
               "density": density}
    result = _run_calibration(data, model, anchors, engine, quiet, min_responses, options)
    data = _recoded(data, getattr(result, "collapsed", {}) or {})
    # what the report repeats (the items left out are its table)
    report_warnings = _screening_warnings([], ignored, responses)
    later = [w.message for w in getattr(result, "warnings", ())]
    runaway = _runaway_slopes(result.params, anchor_ids)
    if runaway:
        later.append("slopes beyond the plausible range, not identified by these responses "
                     "(perfect separation?): " + ", ".join(runaway))
    if not result.converged and not any(getattr(w, "kind", "") == "not_converged"
                                        for w in getattr(result, "warnings", ())):
        later.append(f"calibration did not converge after {result.n_iter} cycles; "
                     "check the items with large standard errors")
    for message in later:
        _warn(message)
    report_warnings += later

    fit, persons = None, None
    if compute_fit:
        _info(quiet, "computing item fit ...")
        fit, persons = _item_fit(result, data, anchor_ids)
    params = result.params  # with the calibrated latent distribution (pooled over groups)
    model_fit = None
    if compute_fit and (not quiet or report_path) and anchors is None \
            and data.groups is None and density == "normal":
        from .calibration import _blas_threads  # start-up cost (module docstring)
        from .modelfit import cheap_m2  # start-up cost (module docstring)

        # one BLAS thread: its factorisations ran 5-8x slower multi-threaded under load
        with _blas_threads(1):
            model_fit = cheap_m2(params, data.matrix, float(result.group_means[0]),
                                 float(result.group_sds[0]))
    if compute_fit:
        _info(quiet, model_fit.line() if model_fit is not None else
              "M2 not computed (needs complete data, at most 60 items, one group, no "
              "anchors, --density normal)")
    html = None
    if report_path:
        _info(quiet, "drawing the report ...")
        html = _calibration_report(result, data, model, engine, anchor_ids, fit, responses,
                                   report_warnings, excluded, persons,
                                   model_fit=model_fit, lang=lang)

    outputs = {out_path: _with_warning_column(format_params(params, fit), params.item_ids,
                                              _item_warnings(result, runaway))}
    if html is not None:
        outputs[report_path] = html
    _write_outputs(outputs)
    _info(quiet, f"wrote {out_path}: {params.n_items} items ({model}, {engine}); "
                 f"loglik {result.loglik:.2f}, AIC {result.aic:.1f}, BIC {result.bic:.1f}, "
                 f"{result.n_iter} cycles; latent N({params.latent_mean:.3f}, "
                 f"{params.latent_sd:.3f}^2)"
                 + (f"; report {report_path}" if report_path else ""))


def _recoded(data: ResponseData, collapsed: Mapping[str, Sequence[int]]) -> ResponseData:
    """The responses with the categories the calibration merged renumbered as it did
    (``collapsed``: item id -> the original category of each new one), for item fit and
    the report."""
    if not collapsed:
        return data
    matrix = data.matrix.copy()
    for j, item in enumerate(data.item_ids):
        used = collapsed.get(str(item))
        if used:
            column = matrix[:, j]
            new = column.copy()
            for k, original in enumerate(used):
                new[column == original] = k
            matrix[:, j] = new
    return ResponseData(data.person_ids, data.item_ids, matrix, data.groups, data.path)


#: the PARAMS.csv ``warning`` text of an item named by a CalibrationWarning of this kind
_ITEM_NOTES = {
    "bound": "estimate at a bound, not identified by these responses (SE not computed)",
    "large_se": "standard error above 10 or not finite",
    "singular_information": "observed information singular (no SEs)",
    "disconnected": "no person in common with the first block of items (scale not linked)",
}


def _item_warnings(result: Any, runaway: Sequence[str]) -> dict[str, list[str]]:
    """Item id -> the warnings of the run that name it, as short texts for PARAMS.csv."""
    notes: dict[str, list[str]] = {}
    collapsed = getattr(result, "collapsed", {}) or {}
    for w in getattr(result, "warnings", ()):
        for item in w.item_ids:
            if w.kind == "collapsed":
                used = collapsed.get(item, ())
                text = ("unused categories merged: original categories "
                        + " ".join(str(u) for u in used) + " scored "
                        + " ".join(str(k) for k in range(len(used))))
            else:
                text = _ITEM_NOTES.get(w.kind, w.kind)
            notes.setdefault(str(item), []).append(text)
    for entry in runaway:
        item = entry.split(" (a = ")[0]
        if not any(t.startswith("estimate at a bound") for t in notes.get(item, [])):
            notes.setdefault(item, []).append("slope beyond the plausible range")
    return notes


def _with_warning_column(text: str, item_ids: Sequence[str],
                         notes: Mapping[str, Sequence[str]]) -> str:
    """PARAMS.csv text with a last ``warning`` column ('; '-joined notes per item).

    Added only when some item has a note (a clean run writes the plain columns);
    :func:`scoring.io.read_params` ignores the column, so the file reads back as before.
    """
    if not any(notes.get(str(item)) for item in item_ids):
        return text
    rows = list(csv.reader(io.StringIO(text)))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0] + ["warning"])
    for item, row in zip(item_ids, rows[1:], strict=True):
        writer.writerow(row + ["; ".join(notes.get(str(item), ()))])
    return buffer.getvalue()


def _usable_anchors(anchors: ItemParams, anchors_path: str,
                    data: ResponseData) -> tuple[ItemParams, list[str]]:
    """The anchors answered in the responses, and the ids of those that were not.

    A bank's calibration usually has more items than one round of responses reaches (an
    adaptive test gives each person a few); an unanswered anchor says nothing about the
    new scale, so it is ignored.  No answered anchor at all is an error, because then the
    scale the run was asked to keep cannot be kept.
    """
    answered = {str(i) for i, column in zip(data.item_ids, data.matrix.T, strict=True)
                if np.any(~np.isnan(column))}
    used = [str(i) for i in anchors.item_ids if str(i) in answered]
    ignored = [str(i) for i in anchors.item_ids if str(i) not in answered]
    if not used:
        raise InputError(anchors_path, None, "item_id",
                         f"none of the {anchors.n_items} anchor items has a response in "
                         f"{data.path}; the scale cannot be anchored (drop --anchors for a "
                         "free calibration)")
    return anchors.subset(used), ignored


def _without_unestimable(data: ResponseData, anchor_ids: Sequence[str],
                         ignored_anchors: Sequence[str], min_responses: int,
                         collapse_unused: bool = False) -> tuple[ResponseData, list[Any]]:
    """The responses without the items no calibration can estimate, and those items.

    Anchors are kept (their parameters are fixed); columns of ignored anchors (no
    response, already reported) are dropped without a second warning.  An item with an
    empty category is kept with ``collapse_unused`` (the calibration merges it), else
    left out with a reason that points at --collapse-unused.  If nothing is left to
    estimate or anchor, the run stops naming the file.
    """
    # start-up cost (module docstring)
    from .calibration import ItemExclusion, screen_items

    ignored = set(ignored_anchors)
    excluded = []
    for e in screen_items(data.matrix, data.item_ids, skip=anchor_ids,
                          min_responses=min_responses):
        if e.item_id in ignored:
            continue
        if e.reason.startswith("no responses in category"):
            if collapse_unused:
                continue
            e = ItemExclusion(e.item_id, e.reason + " (--collapse-unused merges it with "
                                                    "its neighbour)")
        excluded.append(e)
    dropped = {e.item_id for e in excluded} | ignored
    keep = [str(i) for i in data.item_ids if str(i) not in dropped]
    if not keep:
        raise InputError(data.path, None, None,
                         f"no item can be calibrated: all {data.n_items} items are left out "
                         f"({_reason_counts(excluded)})")
    return (data.select_items(keep) if dropped else data), excluded


def _reason_counts(excluded: Sequence[Any]) -> str:
    """'12 no response variance, 3 too few responses' for a short summary."""
    kinds: dict[str, int] = {}
    for e in excluded:
        kind = ("no response variance" if e.reason.startswith("no response variance")
                else "too few responses" if e.reason.startswith("only ")
                else "an empty category")
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items())


def _screening_warnings(excluded: Sequence[Any], ignored_anchors: Sequence[str],
                        responses: str) -> list[str]:
    """The warning lines of a run: items left out (code: reason) and anchors ignored."""
    lines = []
    if ignored_anchors:
        lines.append(f"anchors without responses in {responses}, ignored "
                     f"({len(ignored_anchors)}): "
                     + ", ".join(ignored_anchors))
    if excluded:
        lines.append(f"items left out of the calibration ({len(excluded)}; "
                     f"{_reason_counts(excluded)}): "
                     + "; ".join(f"{e.item_id}: {e.reason}" for e in excluded))
    return lines


def _runaway_slopes(params: ItemParams, anchor_ids: Sequence[str]) -> list[str]:
    """'ID (a = 317)' for estimated items whose slope ran beyond DIVERGING_SLOPE."""
    from .calibration import DIVERGING_SLOPE  # start-up cost (module docstring)

    fixed = {str(i) for i in anchor_ids}
    return [f"{i} (a = {a:.3g})" for i, a in zip(params.item_ids, params.a, strict=True)
            if str(i) not in fixed and np.isfinite(a) and abs(a) > DIVERGING_SLOPE]


def _check_girth_model(model: str) -> None:
    """girth fits only some models (no PCM; its 3PL is broken under numpy 2)."""
    girth_models = catalogue.engine_models("girth")
    if model not in girth_models:
        raise click.UsageError(f"--engine girth supports --model {', '.join(girth_models)}; "
                               "use --engine native")


def _run_calibration(data: ResponseData, model: str, anchors: ItemParams | None,
                     engine: str, quiet: bool, min_responses: int = 10,
                     options: Mapping[str, Any] | None = None) -> Any:
    """Run the chosen engine (native with a progress bar); its errors become messages.

    ``options`` are the native engine's settings from the command line (``priors`` as
    a (slope lognormal, guessing beta) pair, ``n_quad``, ``theta_range``, ``tol``,
    ``max_iter``, ``compute_se``, ``collapse_unused``, ``density``).  The engines raise ValueError
    naming the item for items they cannot estimate (too few responses, an empty
    category), which is a property of the response file.  Every item is fitted: hard
    items end at a bound with a warning instead of being left out.
    """
    try:
        if engine == "girth":
            from .girth_engine import calibrate_girth  # start-up cost (module docstring)

            _info(quiet, "calibrating with girth ...")
            try:
                return calibrate_girth(data.matrix, model, item_ids=data.item_ids)
            except RuntimeError as exc:  # girth's own failures (e.g. 3PL under numpy 2)
                raise click.ClickException(f"girth: {exc}") from exc

        # start-up cost (module docstring)
        from .calibration import Priors
        from .calibration import calibrate as calibrate_items

        settings = dict(options or {})
        slope, guess = settings.pop("priors", (None, Priors().guessing_beta))
        max_iter = int(settings.pop("max_iter", 500))
        progress = _EMProgress(quiet, max_iter)
        try:
            return calibrate_items(data.matrix, model, groups=data.groups, anchors=anchors,
                                   item_ids=data.item_ids, max_iter=max_iter,
                                   progress=progress, min_responses=min_responses,
                                   priors=Priors(slope_lognormal=slope, guessing_beta=guess),
                                   **settings)
        finally:
            progress.close()
    except ValueError as exc:
        raise click.ClickException(f"{data.path}: {exc}") from exc


def _latent_prior(result: Any, data: ResponseData) -> tuple[np.ndarray, np.ndarray,
                                                            float, float]:
    """The calibrated latent distribution: per-person prior mean/SD (by group) and the
    pooled mean/SD of all persons (for statistics that take one normal prior)."""
    means = np.asarray(result.group_means, dtype=float)
    sds = np.asarray(result.group_sds, dtype=float)
    if data.groups is None or len(means) == 1:
        mu = np.full(data.n_persons, means[0])
        sd = np.full(data.n_persons, sds[0])
    else:
        index = {str(label): k for k, label in enumerate(result.group_labels)}
        g = np.array([index[str(label)] for label in data.groups])
        mu, sd = means[g], sds[g]
    pooled_mean = float(mu.mean())
    pooled_sd = float(np.sqrt(np.mean(sd**2 + (mu - pooled_mean) ** 2)))
    return mu, sd, pooled_mean, pooled_sd


def _item_fit(result: Any, data: ResponseData,
              anchor_ids: Sequence[str]) -> tuple[dict[str, np.ndarray], Any]:
    """Infit/outfit mean squares at EAP abilities and S-X2 with its p-value, per item, and
    the EAP estimates themselves (the report plots them).

    Both use the calibrated latent distribution (group means/SDs) as the prior.  S-X2
    needs complete cases; with sparse designs it is NaN (empty in PARAMS.csv).  Anchor
    items count no estimated parameters in the S-X2 degrees of freedom.
    """
    from .calibration import _blas_threads  # start-up cost (module docstring)
    from .estimation import eap  # start-up cost (module docstring)
    from .fit import item_fit_table, n_item_parameters  # start-up cost (module docstring)

    params = result.params
    mu, sd, pooled_mean, pooled_sd = _latent_prior(result, data)
    # one BLAS thread, as in calibrate: the many small products of EAP and S-X2 ran up
    # to 20x slower multi-threaded on the shared 2-core machine (bench/README.md)
    with _blas_threads(1):
        persons = eap(params, data.matrix, prior_mean=mu, prior_sd=sd)
        n_free = np.asarray(n_item_parameters(params), dtype=float).copy()
        n_free[np.isin(params.item_ids, list(anchor_ids))] = 0
        table = item_fit_table(params, data.matrix, persons.theta, prior_mean=pooled_mean,
                               prior_sd=pooled_sd, n_item_params=n_free)
    return ({"infit": np.asarray(table.infit, dtype=float),
             "outfit": np.asarray(table.outfit, dtype=float),
             "sx2": np.asarray(table.sx2, dtype=float),
             "sx2_p": np.asarray(table.sx2_p, dtype=float)}, persons)


def _calibration_report(result: Any, data: ResponseData, model: str, engine: str,
                        anchor_ids: Sequence[str], fit: Mapping[str, np.ndarray],
                        responses: str, warnings: Sequence[str] = (),
                        excluded: Sequence[Any] = (), persons: Any = None,
                        model_fit: Any = None, lang: str | None = None) -> str:
    """The HTML report of one calibration run (with the run's warnings first), in
    ``lang`` (zh_CN by default)."""
    from .fit import empirical_curves  # start-up cost (module docstring)
    from .report import build_report  # start-up cost (module docstring)

    *_, pooled_mean, pooled_sd = _latent_prior(result, data)
    summary: dict[str, Any] = {
        "Responses": responses,
        "Model": model,
        "Engine": engine,
        "Persons": data.n_persons,
        "Items": data.n_items,
        "Anchor items": len(anchor_ids),
        "Log-likelihood": round(float(result.loglik), 3),
        "AIC": round(float(result.aic), 2),
        "BIC": round(float(result.bic), 2),
        "EM cycles": int(result.n_iter),
        "Converged": bool(result.converged),
        "Latent mean": round(float(result.params.latent_mean), 4),
        "Latent SD": round(float(result.params.latent_sd), 4),
    }
    labels = getattr(result, "group_labels", None)
    if labels is not None and len(labels) > 1:
        for label, mean, sd in zip(labels, result.group_means, result.group_sds, strict=True):
            summary[f"{label}: mean, SD"] = f"{mean:.3f}, {sd:.3f}"
    note = getattr(result, "method_note", "")
    if note:
        summary["Method"] = note
    curves, person_view = None, None
    if persons is not None:
        mu, sd, _, _ = _latent_prior(result, data)
        curves = empirical_curves(result.params, data.matrix, prior_mean=mu, prior_sd=sd)
        # girth reports no grid; an empirical histogram is drawn for the reference group
        nodes = getattr(result, "latent_nodes", None)
        nodes = np.array([]) if nodes is None else np.asarray(nodes, dtype=float)
        density = getattr(result, "density", "normal")
        weights = getattr(result, "latent_weights", None) if density == "eh" else None
        summary["Quadrature points"] = int(nodes.size)
        summary["Latent density"] = density
        person_view = {"theta": persons.theta, "nodes": nodes,
                       "weights": None if weights is None else np.asarray(weights)[0],
                       "mean": pooled_mean, "sd": pooled_sd,
                       "posterior_sd": float(np.nanmedian(persons.se))}
    return build_report(result.params, summary=summary, fit=fit, history=result.history,
                        warnings=warnings,
                        excluded=[(e.item_id, e.reason) for e in excluded],
                        model_fit=None if model_fit is None else asdict(model_fit),
                        curves=curves, persons=person_view, lang=lang)


# ---------------------------------------------------------------------------- score

@click.command()
@click.argument("responses", type=_existing_file)
@click.option("--params", "params_path", type=_existing_file, required=True,
              help="PARAMS.csv of the items in RESPONSES.")
@click.option("--method", type=click.Choice(SCORE_METHODS), default="eap", show_default=True,
              help="Ability estimator.")
@click.option("--out", "out_path", type=_output_file, required=True,
              help="SCORES.csv to write.")
@click.option("--id-col", help="Person-id column (default: person_id if present).")
@click.option("--group-col", help="Group column (not an item); plausible values are then "
                                  "drawn with a group-conditioned prior.")
@click.option("--pv", "n_pv", type=click.IntRange(min=0), default=0, show_default=True,
              help="Number of plausible values per person (pv1..pvN).")
@click.option("--seed", type=int, default=None, help="Random seed for plausible values.")
@click.option("--quiet", is_flag=True, help="No messages (for scripts).")
def score(responses: str, params_path: str, method: str, out_path: str, id_col: str | None,
          group_col: str | None, n_pv: int, seed: int | None, quiet: bool) -> None:
    """Estimate abilities for RESPONSES.csv with known item parameters.

    Writes SCORES.csv with person_id, theta, se (and pv1..pvN with --pv N).  Every item
    of RESPONSES needs a row in PARAMS and vice versa.  EAP/MAP and plausible values use
    the calibrated latent distribution of PARAMS (latent_mean, latent_sd; N(0, 1) for a
    file without them); MLE/WLE are clamped to the scale ends for extreme patterns.
    """
    from .estimation import estimate  # start-up cost (module docstring)

    _check_outputs(out_path)
    with _user_errors():
        params = read_params(params_path)
        data = read_responses(responses, id_col=id_col, group_col=group_col,
                              max_scores=_max_scores(params))
        params = _match_params(params, params_path, data)
    with _user_errors(ValueError):
        estimates = estimate(params, data.matrix, method=method)
        pvs = _plausible_values(params, data, n_pv, seed) if n_pv else None
    with _output_errors():
        write_scores(out_path, data.person_ids, estimates, pvs)
    theta = np.asarray(estimates.theta, dtype=float)
    ok = np.isfinite(theta)
    _info(quiet, f"wrote {out_path}: {data.n_persons} persons ({method}"
                 + (f", {n_pv} plausible values" if n_pv else "") + f"); theta mean "
                 f"{np.mean(theta[ok]):.3f}, SD {np.std(theta[ok]):.3f}"
                 + (f"; {int((~ok).sum())} persons without an estimate" if (~ok).any() else ""))


def _plausible_values(params: ItemParams, data: ResponseData, n_pv: int,
                      seed: int | None) -> np.ndarray:
    """(n_persons, n_pv) plausible values: posterior draws under the scale's latent
    distribution (``params.latent_mean``/``latent_sd``), or, with groups, under a prior
    with a mean per group (estimated from the responses) so that group differences are
    not shrunk towards the overall mean."""
    from .plausible import plausible_values  # start-up cost (module docstring)

    return np.asarray(plausible_values(params, data.matrix, n_draws=n_pv, rng=seed,
                                       groups=data.groups))


# ---------------------------------------------------------------------------- dif

@click.command()
@click.argument("responses", type=_existing_file)
@click.option("--params", "params_path", type=_existing_file, required=True,
              help="PARAMS.csv of the items in RESPONSES (the matching ability).")
@click.option("--group-col", required=True, help="Column with the group of each person.")
@click.option("--focal", required=True, help="Group value of the focal group; every other "
                                             "value is the reference group.")
@click.option("--out", "out_path", type=_output_file,
              help="DIF.csv to write (default: print the table).")
@click.option("--method", type=click.Choice(DIF_METHODS), default="mh", show_default=True,
              help="mh: Mantel-Haenszel with ETS A/B/C; logistic: logistic regression; both; "
                   "lr: IRT likelihood ratio of two-group calibrations (polytomous items too).")
@click.option("--id-col", help="Person-id column (default: person_id if present).")
@click.option("--anchor-items", help="--method lr: comma-separated anchor item ids "
                                     "(default: every other item anchors each test).")
def dif(responses: str, params_path: str, group_col: str, focal: str, out_path: str | None,
        method: str, id_col: str | None, anchor_items: str | None = None) -> None:
    """Differential item functioning of each item between a focal and a reference group.

    mh/logistic: persons are matched on the number-correct score when everyone answered
    every item, otherwise on their EAP theta under PARAMS (and its latent distribution);
    dichotomous items only (polytomous items get empty statistics and a note).  ETS
    classes: A negligible, B moderate, C large; a negative MH D-DIF means the item is
    harder for the focal group.
    lr: for each item, a two-group calibration (reference N(0, 1), focal mean and SD free)
    with the item's parameters equal in both groups against one with them free in the
    focal group, in the models of PARAMS; chi-square, Benjamini-Hochberg p, and the
    focal-minus-reference expected-score difference (negative = harder for the focal group).
    """
    _check_outputs(out_path)
    if anchor_items and method != "lr":
        raise click.UsageError("--anchor-items applies to --method lr only")
    with _user_errors():
        params = read_params(params_path)
        data = read_responses(responses, id_col=id_col, group_col=group_col,
                              max_scores=_max_scores(params))
        params = _match_params(params, params_path, data)
        focal_mask = _focal_mask(data, group_col, focal)
        anchors = _dif_anchor_items(anchor_items, data) if anchor_items else None
    with _user_errors(ValueError):
        if method == "lr":
            header, rows, matched_on = _lr_dif_table(params, data, focal_mask, anchors)
        else:
            matching, matched_on = _dif_matching(params, data)
            header, rows = _dif_table(params, data, focal_mask, method, matching)
    n_focal = int(focal_mask.sum())
    click.echo(f"focal '{focal}' ({n_focal} persons) vs reference (all other groups, "
               f"{data.n_persons - n_focal} persons); matched on {matched_on}", err=True)
    if out_path:
        with _output_errors():
            write_table(out_path, header, rows)
        click.echo(f"wrote {out_path}: {len(rows)} items", err=True)
    else:
        click.echo(_text_table(header, rows))
    for column, label in (("ets_class", "ETS class"), ("lr_class", "logistic DIF class")):
        if column in header:
            k = header.index(column)
            flagged = [str(row[0]) for row in rows if row[k] == "C"]
            if flagged:
                click.echo(f"{label} C (large DIF): {', '.join(flagged)}", err=True)
    if "irt_lr_flag" in header:
        k = header.index("irt_lr_flag")
        flagged = [str(row[0]) for row in rows if row[k] is True]
        if flagged:
            click.echo(f"IRT LR DIF (Benjamini-Hochberg p < 0.05): {', '.join(flagged)}",
                       err=True)


def _focal_mask(data: ResponseData, group_col: str, focal: str) -> np.ndarray:
    """Boolean (n_persons,) mask of the focal group; both groups must be non-empty."""
    assert data.groups is not None
    mask = data.groups == focal
    values = sorted(set(data.groups.tolist()))
    if not mask.any():
        raise InputError(data.path, None, group_col,
                         f"no person in focal group '{focal}' (values: {', '.join(values)})")
    if mask.all():
        raise InputError(data.path, None, group_col,
                         f"every person is in group '{focal}'; no reference group")
    return mask


def _dif_matching(params: ItemParams, data: ResponseData) -> tuple[np.ndarray | None, str]:
    """The ability persons are matched on: number-correct when every person answered every
    item (the classical choice), else EAP theta from PARAMS (raw scores over different
    item sets are not comparable)."""
    if not np.isnan(data.matrix).any():
        return None, "total score"
    from .estimation import eap  # start-up cost (module docstring)

    return eap(params, data.matrix).theta, "EAP theta (incomplete design)"


def _dif_table(params: ItemParams, data: ResponseData, focal: np.ndarray, method: str,
               matching: np.ndarray | None) -> tuple[list[str], list[list[Any]]]:
    """Per-item DIF table for the chosen method(s), one row per item in column order."""
    from .dif import logistic_dif, mantel_haenszel  # start-up cost (module docstring)

    ids = [str(i) for i in params.item_ids]
    header = ["item_id"]
    columns: list[Sequence[Any]] = []
    notes = [""] * len(ids)
    if method in ("mh", "both"):
        mh = mantel_haenszel(data.matrix, focal, matching, item_ids=ids)
        header += ["n_ref", "n_focal", "mh_alpha", "mh_d_dif", "mh_se_d_dif", "mh_chi2",
                   "mh_p", "ets_class"]
        columns += [mh.n_ref, mh.n_focal, mh.alpha_mh, mh.delta_mh, mh.se_delta, mh.chi2,
                    mh.p, mh.ets_class]
        notes = [str(r) for r in mh.reason]
    if method in ("logistic", "both"):
        lr = logistic_dif(data.matrix, focal, matching, item_ids=ids)
        if method == "logistic":
            header += ["n_ref", "n_focal"]
            columns += [lr.n_ref, lr.n_focal]
        header += ["lr_uniform_chi2", "lr_uniform_p", "lr_nonuniform_chi2",
                   "lr_nonuniform_p", "lr_delta_r2", "lr_class"]
        columns += [lr.uniform_chi2, lr.uniform_p, lr.nonuniform_chi2, lr.nonuniform_p,
                    lr.delta_r2, lr.classification]
        notes = [n or str(r) for n, r in zip(notes, lr.reason, strict=True)]
    header.append("note")
    rows = [[item] + [_plain(col[j]) for col in columns] + [notes[j]]
            for j, item in enumerate(ids)]
    return header, rows


def _dif_anchor_items(spec: str, data: ResponseData) -> list[str]:
    """The ids of ``--anchor-items`` (comma-separated), each an item column of the data."""
    ids = [part.strip() for part in spec.split(",") if part.strip()]
    known = {str(i) for i in data.item_ids}
    for item in ids:
        if item not in known:
            raise InputError(data.path, None, item,
                             "no such item column (named by --anchor-items)")
    if not ids:
        raise click.UsageError("--anchor-items names no item")
    return ids


def _lr_dif_table(params: ItemParams, data: ResponseData, focal: np.ndarray,
                  anchors: Sequence[str] | None) -> tuple[list[str], list[list[Any]], str]:
    """Per-item IRT likelihood-ratio DIF table (models from PARAMS), and how it matched."""
    from .dif import lr_dif  # start-up cost (module docstring)

    ids = [str(i) for i in params.item_ids]
    res = lr_dif(data.matrix, [str(m) for m in params.model], focal, anchors,
                 item_ids=ids)
    header = ["item_id", "model", "n_ref", "n_focal", "irt_lr_chi2", "irt_lr_df",
              "irt_lr_p", "irt_lr_p_bh", "irt_lr_flag", "irt_lr_score_diff",
              "irt_lr_unsigned_diff", "note"]
    rows = []
    for j, item in enumerate(ids):
        studied = bool(res.studied[j]) and not res.reason[j]
        rows.append([item, str(res.model[j]), _plain(res.n_ref[j]), _plain(res.n_focal[j]),
                     _plain(res.chi2[j]), _plain(res.df[j]) if studied else None,
                     _plain(res.p[j]), _plain(res.p_adjusted[j]),
                     bool(res.flagged[j]) if studied else None,
                     _plain(res.score_difference[j]), _plain(res.unsigned_difference[j]),
                     str(res.reason[j]) or ("" if res.converged[j] else "not converged")])
    how = (f"two-group IRT calibrations (focal mean {res.focal_mean:.3f}, SD "
           f"{res.focal_sd:.3f}; anchors: "
           + (", ".join(anchors) if anchors else "every other item") + ")")
    return header, rows, how


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (for CSV and text output)."""
    return value.item() if isinstance(value, np.generic) else value


def _text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table for the terminal."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.3f}"
        return str(value)

    text = [[str(h) for h in header]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[c]) for r in text) for c in range(len(header))]
    lines = ["  ".join(v.rjust(w) if c else v.ljust(w) for c, (v, w) in
                       enumerate(zip(r, widths, strict=True))) for r in text]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- link

@click.command()
@click.argument("new_path", metavar="NEW.csv", type=_existing_file)
@click.argument("ref_path", metavar="REF.csv", type=_existing_file)
@click.option("--method", type=click.Choice(LINK_METHODS), default="stocking-lord",
              show_default=True, help="Linking method on the common items.")
@click.option("--out", "out_path", type=_output_file,
              help="Write all of NEW's items transformed to REF's scale (LINKED.csv).")
def link(new_path: str, ref_path: str, method: str, out_path: str | None) -> None:
    """Put NEW.csv's item parameters on the scale of REF.csv through their common items.

    Prints the constants A and B of theta_ref = A * theta_new + B.
    """
    _check_outputs(out_path)
    with _user_errors():
        new = read_params(new_path)
        ref = read_params(ref_path)
        _check_common_items(new, new_path, ref, ref_path)
    from . import linking  # start-up cost (module docstring)

    with _user_errors(ValueError):
        transform = linking.link(new, ref, method=method.replace("-", "_"))
        linked = linking.apply_transform(new, transform)
    click.echo(f"A = {transform.A:.6f}\nB = {transform.B:.6f}")
    click.echo(f"{method} on {transform.n_common} common items; "
               f"theta_ref = A * theta_new + B", err=True)
    if not transform.converged:
        _warn(f"{method} did not converge; the constants may be inaccurate")
    if out_path:
        with _output_errors():
            write_params(out_path, linked)
        click.echo(f"wrote {out_path}: {linked.n_items} items on the scale of {ref_path}",
                   err=True)


def _check_common_items(new: ItemParams, new_path: str, ref: ItemParams,
                        ref_path: str) -> None:
    """Refuse two banks without a common item id (model checks are linking's)."""
    if not set(map(str, new.item_ids)) & set(map(str, ref.item_ids)):
        raise InputError(new_path, None, "item_id", f"no item in common with {ref_path}")


# ---------------------------------------------------------------------------- distractors

@click.command()
@click.argument("responses", type=_existing_file)
@click.option("--key", "key_path", type=_existing_file, required=True,
              help="KEY.csv: item_id,key[,options] -- the correct option of each item and, "
                   "optionally, all its options (e.g. 'A B C D') so that options nobody "
                   "chose are reported too.")
@click.option("--out", "out_path", type=_output_file, required=True,
              help="DISTRACTORS.csv to write: one row per item and option.")
@click.option("--report", "report_path", type=_output_file,
              help="Also write a self-contained HTML report with the option curves.")
@click.option("--id-col", help="Person-id column (default: person_id if present).")
@click.option("--group-col", help="A column that is not an item (ignored here).")
@click.option("--slope-prior-sd", type=click.FloatRange(min=0), default=3.0,
              show_default=True, help="SD of the normal prior on each item's centred "
                                      "option slopes (0: none, plain ML).")
@click.option("--latent-mean", type=float, default=0.0, show_default=True,
              help="Mean of the latent distribution (a calibrated scale's).")
@click.option("--latent-sd", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="SD of the latent distribution.")
@click.option("--se", "se_method", type=click.Choice(("observed", "crossprod", "none")),
              default="observed", show_default=True,
              help="Standard errors: observed information (Louis), score cross-product, "
                   "or none.")
@click.option("--lang", type=click.Choice(["zh_CN", "en"]), default="zh_CN", show_default=True,
              help="Language of the HTML report.")
@click.option("--quiet", is_flag=True, help="No messages on stderr (for scripts).")
def distractors(responses: str, key_path: str, out_path: str, report_path: str | None,
                id_col: str | None, group_col: str | None, slope_prior_sd: float,
                latent_mean: float, latent_sd: float, se_method: str, lang: str,
                quiet: bool) -> None:
    """Distractor analysis of single-choice items with the nominal response model.

    RESPONSES is wide: one row per person, one column per item holding the option chosen
    (a letter such as A-D, or an option code); empty = not answered.  The nominal
    response model (Bock) is fitted by MML-EM and DISTRACTORS.csv gets, per item and
    option: how many chose it and their share, the mean EAP ability of its choosers, its
    slope and intercept with standard errors, its slope relative to the key, and a note:
    an "attractive" distractor draws able persons (its slope exceeds the key's, or its
    probability still rises one SD above the mean ability).
    """
    from .nominal import analyse_distractors, calibrate_nominal  # start-up cost (docstring)

    _check_outputs(out_path, report_path)
    with _user_errors():
        choices = _read_choices(responses, id_col, group_col)
        keys = _read_key(key_path, choices)
        x, options, key_index = _option_matrix(choices, keys, key_path)
    n_options = np.array([len(o) for o in options])
    with _user_errors(ValueError):
        fit = calibrate_nominal(x, n_options, key=key_index, item_ids=choices.item_ids,
                                slope_prior_sd=slope_prior_sd or None,
                                latent_mean=latent_mean, latent_sd=latent_sd,
                                se=se_method)
        table = analyse_distractors(fit, x, key_index)
    header, rows = _distractor_rows(table, options)
    html = None
    if report_path:
        from .nominal_report import build_distractor_report  # start-up cost (matplotlib)

        html = build_distractor_report(fit, table, options, lang=lang)
    with _output_errors():
        write_table(out_path, header, rows)
    if html is not None:
        _write_outputs({report_path: html})
    shown = ["item_id", "option", "key", "n_chosen", "share", "mean_theta", "slope",
             "slope_vs_key", "note"]
    text_rows = [[row[header.index(c)] for c in shown] for row in rows]
    for row in text_rows:
        row[2] = "key" if row[2] else ""
    click.echo(_text_table(shown, text_rows))
    if not fit.converged:
        _warn(f"the nominal model did not converge after {fit.n_iter} EM steps")
    if fit.never_chosen:
        _warn("options nobody chose (left out of the model): " + ", ".join(
            f"{item} {options[list(choices.item_ids).index(item)][k]}"
            for item, k in fit.never_chosen))
    big = [f"{row[0]} {row[1]}" for row in rows
           if isinstance(row[header.index("slope")], float)
           and abs(row[header.index("slope")]) > 10]
    if big:
        _warn("option slopes beyond 10 (too few choosers to estimate them; raise "
              "--slope-prior-sd's weight by lowering it): " + ", ".join(big))
    attractive = [f"{row[0]} {row[1]}" for row in rows if row[header.index("attractive")]]
    if attractive:
        _info(quiet, "attractive distractors (drawing able persons): " + ", ".join(attractive))
    _info(quiet, f"wrote {out_path}: {len(choices.item_ids)} items, "
                 f"{len(choices.person_ids)} persons; nominal model loglik {fit.loglik:.2f}, "
                 f"{fit.n_iter} EM steps" + (f"; report {report_path}" if report_path else ""))


class _Choices:
    """Raw option choices of a wide response file: ids, and per item its cells as text
    ('' = not answered) with the file's row numbers."""

    def __init__(self, path: str, person_ids: list[str], item_ids: list[str],
                 cells: dict[str, np.ndarray], lines: np.ndarray, header_line: int):
        self.path, self.person_ids, self.item_ids = path, person_ids, item_ids
        self.cells, self.lines, self.header_line = cells, lines, header_line


def _read_choices(path: str, id_col: str | None, group_col: str | None) -> _Choices:
    """A wide RESPONSES.csv of option codes, read by the same reader as read_responses
    (UTF-8, comma-separated, one header, rows as wide as it; errors name row and column)."""
    from .io import _read  # start-up cost: none (io is loaded); the reader io.py uses

    def check(line: int, header: list[str]) -> None:
        for name, option in ((id_col, "--id-col"), (group_col, "--group-col")):
            if name is not None and name not in header:
                raise InputError(path, line, name, f"no such column (named by {option})")

    header_line, header, table = _read(path, check)
    if id_col is None and "person_id" in header:
        id_col = "person_id"
    items = [name for name in header if name not in (id_col, group_col)]
    lines = table.lines
    if len(table) == 0:
        raise InputError(path, None, None, "no data rows after the header")
    if not items:
        raise InputError(path, header_line, None, "no item columns")
    if id_col is not None:
        ids = table.columns[id_col]
        empty = ids == ""
        if empty.any():
            raise InputError(path, lines[int(np.argmax(empty))], id_col, "empty person id")
        seen: dict[str, int] = {}
        for i, person in enumerate(ids.tolist()):
            if seen.setdefault(person, i) != i:
                raise InputError(path, lines[i], id_col, f"duplicate person id '{person}' "
                                 f"(first on row {lines[seen[person]]})")
        persons = ids.tolist()
    else:
        persons = [str(k) for k in range(1, len(table) + 1)]
    cells = {item: table.columns[item].astype(str) for item in items}
    return _Choices(path, persons, items, cells, lines, header_line)


_KEY_SPLIT = (" ", "|", ";", "/")


def _read_key(path: str, choices: _Choices) -> dict[str, tuple[str, list[str] | None]]:
    """KEY.csv: ``item_id,key[,options]`` -> {item: (key code, options or None)}.

    Every item of the responses needs a row; every row an item of the responses, a
    non-empty key, and (when ``options`` is filled) distinct options that include the key.
    """
    from .io import _read  # start-up cost: none (io is loaded); the reader io.py uses

    def check(line: int, header: list[str]) -> None:
        for column in ("item_id", "key"):
            if column not in header:
                raise InputError(path, line, column, "required column is missing")

    _, header, table = _read(path, check)
    known = set(choices.item_ids)
    out: dict[str, tuple[str, list[str] | None]] = {}
    first: dict[str, int] = {}
    has_options = "options" in header
    for line, *cells in table.rows():
        row = dict(zip(header, cells, strict=True))
        item, key = row["item_id"], row["key"]
        if not item:
            raise InputError(path, line, "item_id", "empty item id")
        if item in first:
            raise InputError(path, line, "item_id",
                             f"duplicate item '{item}' (first on row {first[item]})")
        first[item] = line
        if item not in known:
            raise InputError(path, line, "item_id",
                             f"item '{item}' is not a column of {choices.path}")
        if not key:
            raise InputError(path, line, "key", f"empty key for item '{item}'")
        options = None
        if has_options and row["options"]:
            options = _split_options(row["options"])
            repeated = sorted({o for o in options if options.count(o) > 1})
            if repeated:
                raise InputError(path, line, "options", f"option '{repeated[0]}' is listed "
                                 "twice")
            if len(options) < 2:
                raise InputError(path, line, "options", "an item needs at least two options")
            if key not in options:
                raise InputError(path, line, "key", f"key '{key}' is not one of the options "
                                 f"{' '.join(options)}")
        out[item] = (key, options)
    missing = [item for item in choices.item_ids if item not in out]
    if missing:
        more = f" (nor have {len(missing) - 1} more items)" if len(missing) > 1 else ""
        raise InputError(choices.path, choices.header_line, missing[0],
                         f"item has no key in {path}{more}")
    return out


def _split_options(cell: str) -> list[str]:
    """'A B C D', 'A|B|C|D', 'A;B;C;D' or 'ABCD' -> ['A', 'B', 'C', 'D']."""
    for sep in _KEY_SPLIT:
        if sep in cell:
            return [part.strip() for part in cell.split(sep) if part.strip()]
    return list(cell) if len(cell) > 1 else [cell]


def _inferred_options(codes: Sequence[str]) -> list[str]:
    """The options of an item from its codes and key: single letters run from A (or a) to
    the last letter used, whole numbers from 0 or 1 to the largest, so that an option
    nobody chose inside that run is still counted; other codes sorted as text."""
    codes = sorted(set(codes))
    if all(len(c) == 1 and "A" <= c <= "Z" for c in codes):
        return [chr(k) for k in range(ord("A"), ord(max(codes)) + 1)]
    if all(len(c) == 1 and "a" <= c <= "z" for c in codes):
        return [chr(k) for k in range(ord("a"), ord(max(codes)) + 1)]
    if all(c.isdigit() for c in codes):
        values = [int(c) for c in codes]
        return [str(k) for k in range(0 if min(values) == 0 else 1, max(values) + 1)]
    return codes


def _option_matrix(choices: _Choices, keys: Mapping[str, tuple[str, list[str] | None]],
                   key_path: str) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
    """Option indices (persons x items, NaN = not answered), options per item, key index.

    A code outside an item's listed options is an error naming the row and column.
    """
    n = len(choices.person_ids)
    x = np.full((n, len(choices.item_ids)), np.nan)
    options: list[list[str]] = []
    key_index = np.zeros(len(choices.item_ids), dtype=int)
    for j, item in enumerate(choices.item_ids):
        cells = choices.cells[item]
        answered = cells != ""
        key, listed = keys[item]
        opts = listed or _inferred_options(list(np.unique(cells[answered])) + [key])
        position = {o: k for k, o in enumerate(opts)}
        codes = np.array([position.get(c, -1) for c in cells[answered]])
        if np.any(codes < 0):
            i = np.flatnonzero(answered)[int(np.argmax(codes < 0))]
            raise InputError(choices.path, choices.lines[i], item,
                             f"option '{cells[i]}' is not one of the options "
                             f"{' '.join(opts)} of this item (from {key_path})")
        x[answered, j] = codes
        options.append(opts)
        key_index[j] = position[key]
    return x, options, key_index


def _distractor_rows(table: Any, options: Sequence[Sequence[str]]
                     ) -> tuple[list[str], list[list[Any]]]:
    """Header and one row per item and option of DISTRACTORS.csv."""
    header = ["item_id", "option", "key", "n_chosen", "share", "mean_theta", "slope",
              "se_slope", "intercept", "se_intercept", "slope_vs_key", "se_slope_vs_key",
              "attractive", "note"]
    rows = []
    for j, item in enumerate(table.item_ids):
        for k, option in enumerate(options[j]):
            rows.append([str(item), option, bool(k == table.key[j]),
                         int(table.n_chosen[j, k])]
                        + [float(arr[j, k]) for arr in (
                            table.share, table.mean_theta, table.slope, table.se_slope,
                            table.intercept, table.se_intercept, table.slope_vs_key,
                            table.se_slope_vs_key)]
                        + [bool(table.attractive[j, k]), str(table.note[j, k])])
    return header, rows


# ---------------------------------------------------------------------------- standalone

main = click.Group(name="scoring", commands=[calibrate, score, dif, link, distractors],
                   help="Offline IRT tools (same commands as `learningcity ...`).")

if __name__ == "__main__":  # pragma: no cover
    main()
