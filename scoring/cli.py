"""Offline command line of ``scoring``: ``calibrate``, ``score``, ``dif`` and ``link``.

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

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import click
import numpy as np
from tqdm import tqdm

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

__all__ = ["calibrate", "dif", "link", "main", "score"]

ENGINES = catalogue.ENGINES
SCORE_METHODS = ("eap", "map", "mle", "wle")
DIF_METHODS = ("mh", "logistic", "both")
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
@click.option("--report", "report_path", type=_output_file,
              help="Also write a self-contained HTML report.")
@click.option("--quiet", is_flag=True, help="No progress bar or messages (for scripts).")
def calibrate(responses: str, model: str, out_path: str, id_col: str | None,
              group_col: str | None, anchors_path: str | None, min_responses: int,
              engine: str, report_path: str | None, quiet: bool) -> None:
    """Calibrate item parameters from RESPONSES.csv and write PARAMS.csv.

    RESPONSES is wide (one row per person, one column per item, empty = not
    administered) or long (person,item,score[,group]).  PARAMS.csv gets the estimates,
    their standard errors and item fit (infit/outfit mean squares, S-X2).

    Items that cannot be estimated (all responses the same, fewer than --min-responses
    responses, an empty category) are left out of PARAMS.csv, and anchors that were not
    answered are ignored; both are listed as warnings (and in the report).
    """
    _check_outputs(out_path, report_path)
    if engine == "girth":
        _check_girth_model(model)
        if anchors_path or group_col:
            raise click.UsageError("--engine girth supports neither --anchors nor "
                                   "--group-col; use --engine native")
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
        data, excluded = _without_unestimable(data, anchor_ids, ignored, min_responses)
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
    result, data, singular = _fit_without_singular(data, model, anchors, engine, quiet,
                                                   min_responses, anchor_ids)
    excluded = excluded + singular
    if singular:
        _warn(f"items left out after a singular information matrix ({len(singular)}; "
              "refitted without them): "
              + "; ".join(f"{e.item_id}: {e.reason}" for e in singular))
    # what the report repeats (the items left out are its table)
    report_warnings = _screening_warnings([], ignored, responses)
    later = []
    if getattr(result, "unidentified_items", ()):
        later.append("standard errors not computed: the observed information is singular; "
                     "items it points at: " + ", ".join(result.unidentified_items))
    runaway = _runaway_slopes(result.params, anchor_ids)
    if runaway:
        later.append("slopes beyond the plausible range, not identified by these responses "
                     "(perfect separation?): " + ", ".join(runaway))
    if not result.converged:
        later.append(f"calibration did not converge after {result.n_iter} cycles; "
                     "check the items with large standard errors")
    for message in later:
        _warn(message)
    report_warnings += later

    _info(quiet, "computing item fit ...")
    fit = _item_fit(result, data, anchor_ids)
    html = None
    if report_path:
        _info(quiet, "drawing the report ...")
        html = _calibration_report(result, data, model, engine, anchor_ids, fit, responses,
                                   report_warnings, excluded)

    outputs = {out_path: format_params(result.params, fit)}
    if html is not None:
        outputs[report_path] = html
    _write_outputs(outputs)
    _info(quiet, f"wrote {out_path}: {result.params.n_items} items ({model}, {engine}); "
                 f"loglik {result.loglik:.2f}, AIC {result.aic:.1f}, BIC {result.bic:.1f}, "
                 f"{result.n_iter} cycles" + (f"; report {report_path}" if report_path else ""))


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
                         ignored_anchors: Sequence[str],
                         min_responses: int) -> tuple[ResponseData, list[Any]]:
    """The responses without the items no calibration can estimate, and those items.

    Anchors are kept (their parameters are fixed); columns of ignored anchors (no
    response, already reported) are dropped without a second warning.  If nothing is
    left to estimate or anchor, the run stops naming the file.
    """
    from .calibration import screen_items  # start-up cost (module docstring)

    ignored = set(ignored_anchors)
    excluded = [e for e in screen_items(data.matrix, data.item_ids, skip=anchor_ids,
                                        min_responses=min_responses)
                if e.item_id not in ignored]
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


def _fit_without_singular(data: ResponseData, model: str, anchors: ItemParams | None,
                          engine: str, quiet: bool, min_responses: int,
                          anchor_ids: Sequence[str]) -> tuple[Any, ResponseData, list[Any]]:
    """Calibrate; items whose information turns singular are left out and the fit rerun.

    Returns the result, the responses it used and the items left out on the way (with
    their slope when the fit stopped).  Sparse adaptive responses often separate some
    items perfectly along ability; their slopes run off and no estimate exists, which a
    researcher wants reported by item rather than as a failed run.
    """
    from .calibration import ItemExclusion, SingularInformation  # start-up cost

    left_out: list[Any] = []
    while True:
        try:
            return _run_calibration(data, model, anchors, engine, quiet, min_responses), \
                data, left_out
        except SingularInformation as exc:
            left_out += [ItemExclusion(i, f"information matrix singular (slope a = {a:.3g} "
                                          "when the fit stopped)")
                         for i, a in zip(exc.item_ids, exc.slopes, strict=True)]
            keep = [str(i) for i in data.item_ids if str(i) not in set(exc.item_ids)]
            if not [i for i in keep if i not in set(anchor_ids)] and not anchor_ids:
                raise click.ClickException(f"{data.path}: {exc}; no item is left to "
                                           "calibrate") from None
            _info(quiet, f"{len(exc.item_ids)} item(s) with a singular information "
                         "matrix left out; fitting again ...")
            data = data.select_items(keep)


def _check_girth_model(model: str) -> None:
    """girth fits only some models (no PCM; its 3PL is broken under numpy 2)."""
    girth_models = catalogue.engine_models("girth")
    if model not in girth_models:
        raise click.UsageError(f"--engine girth supports --model {', '.join(girth_models)}; "
                               "use --engine native")


def _run_calibration(data: ResponseData, model: str, anchors: ItemParams | None,
                     engine: str, quiet: bool, min_responses: int = 10) -> Any:
    """Run the chosen engine (native with a progress bar); its errors become messages.

    The engines raise ValueError naming the item for items they cannot estimate (too few
    responses, an empty category), which is a property of the response file.
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
        from .calibration import calibrate as calibrate_items

        max_iter = 500
        progress = _EMProgress(quiet, max_iter)
        try:
            return calibrate_items(data.matrix, model, groups=data.groups, anchors=anchors,
                                   item_ids=data.item_ids, max_iter=max_iter,
                                   progress=progress, min_responses=min_responses)
        finally:
            progress.close()
    except ValueError as exc:
        from .calibration import SingularInformation  # start-up cost (module docstring)

        if isinstance(exc, SingularInformation):
            raise  # the caller leaves the items out and fits again
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
              anchor_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Infit/outfit mean squares at EAP abilities and S-X2 with its p-value, per item.

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
        theta = eap(params, data.matrix, prior_mean=mu, prior_sd=sd).theta
        n_free = np.asarray(n_item_parameters(params), dtype=float).copy()
        n_free[np.isin(params.item_ids, list(anchor_ids))] = 0
        table = item_fit_table(params, data.matrix, theta, prior_mean=pooled_mean,
                               prior_sd=pooled_sd, n_item_params=n_free)
    return {"infit": np.asarray(table.infit, dtype=float),
            "outfit": np.asarray(table.outfit, dtype=float),
            "sx2": np.asarray(table.sx2, dtype=float),
            "sx2_p": np.asarray(table.sx2_p, dtype=float)}


def _calibration_report(result: Any, data: ResponseData, model: str, engine: str,
                        anchor_ids: Sequence[str], fit: Mapping[str, np.ndarray],
                        responses: str, warnings: Sequence[str] = (),
                        excluded: Sequence[Any] = ()) -> str:
    """The HTML report of one calibration run (with the run's warnings first)."""
    from .report import build_report  # start-up cost (module docstring)

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
    }
    labels = getattr(result, "group_labels", None)
    if labels is not None and len(labels) > 1:
        for label, mean, sd in zip(labels, result.group_means, result.group_sds, strict=True):
            summary[f"Group {label}: mean, SD"] = f"{mean:.3f}, {sd:.3f}"
    note = getattr(result, "method_note", "")
    if note:
        summary["Method"] = note
    return build_report(result.params, title=f"Calibration report: {responses}",
                        summary=summary, fit=fit, history=result.history,
                        warnings=warnings,
                        excluded=[(e.item_id, e.reason) for e in excluded])


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
    of RESPONSES needs a row in PARAMS and vice versa.  EAP/MAP use the N(0, 1) prior of
    the calibrated scale; MLE/WLE are clamped to the scale ends for extreme patterns.
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
    """(n_persons, n_pv) plausible values: posterior draws under the N(0, 1) scale prior,
    or, with groups, under a prior with a mean per group (estimated from the responses) so
    that group differences are not shrunk towards the overall mean."""
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
              help="mh: Mantel-Haenszel with ETS A/B/C; logistic: logistic regression; both.")
@click.option("--id-col", help="Person-id column (default: person_id if present).")
def dif(responses: str, params_path: str, group_col: str, focal: str, out_path: str | None,
        method: str, id_col: str | None) -> None:
    """Differential item functioning of each item between a focal and a reference group.

    Persons are matched on the number-correct score when everyone answered every item,
    otherwise on their EAP theta under PARAMS.  Dichotomous items only (polytomous items
    get empty statistics and a note).  ETS classes: A negligible, B moderate, C large;
    a negative MH D-DIF means the item is harder for the focal group.
    """
    _check_outputs(out_path)
    with _user_errors():
        params = read_params(params_path)
        data = read_responses(responses, id_col=id_col, group_col=group_col,
                              max_scores=_max_scores(params))
        params = _match_params(params, params_path, data)
        focal_mask = _focal_mask(data, group_col, focal)
    with _user_errors(ValueError):
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


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (for CSV and text output)."""
    return value.item() if isinstance(value, np.generic) else value


def _text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table for the terminal."""
    def cell(value: Any) -> str:
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


# ---------------------------------------------------------------------------- standalone

main = click.Group(name="scoring", commands=[calibrate, score, dif, link],
                   help="Offline IRT tools (same commands as `learningcity ...`).")

if __name__ == "__main__":  # pragma: no cover
    main()
