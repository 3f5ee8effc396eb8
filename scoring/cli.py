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
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import click
import numpy as np

from .io import (
    InputError,
    ResponseData,
    atomic_write,
    check_item_variance,
    format_params,
    read_params,
    read_responses,
    write_params,
    write_scores,
    write_table,
)
from .params import DICHOTOMOUS, MODELS, ItemParams

__all__ = ["calibrate", "dif", "link", "main", "score"]

ENGINES = ("native", "girth")
SCORE_METHODS = ("eap", "map", "mle", "wle")
DIF_METHODS = ("mh", "logistic", "both")
LINK_METHODS = ("mean-mean", "mean-sigma", "stocking-lord", "haebara")

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
        raise InputError(data.path, None, missing[0],
                         f"item has no parameters in {params_path}"
                         + (f" (nor {len(missing) - 1} more items)" if len(missing) > 1 else ""))
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
@click.option("--model", type=click.Choice(MODELS), required=True,
              help="IRT model of the items to calibrate (anchors keep their own model).")
@click.option("--out", "out_path", type=_output_file, required=True,
              help="PARAMS.csv to write.")
@click.option("--id-col", help="Person-id column (default: person_id if present).")
@click.option("--group-col",
              help="Group column: multi-group calibration with a mean and SD per group.")
@click.option("--anchors", "anchors_path", type=_existing_file,
              help="PARAMS.csv of fixed items that set the scale (every anchor item must "
                   "be in RESPONSES).")
@click.option("--engine", type=click.Choice(ENGINES), default="native", show_default=True,
              help="native: MML-EM of scoring.calibration; girth: the girth package.")
@click.option("--report", "report_path", type=_output_file,
              help="Also write a self-contained HTML report.")
@click.option("--quiet", is_flag=True, help="No progress bar or messages (for scripts).")
def calibrate(responses: str, model: str, out_path: str, id_col: str | None,
              group_col: str | None, anchors_path: str | None, engine: str,
              report_path: str | None, quiet: bool) -> None:
    """Calibrate item parameters from RESPONSES.csv and write PARAMS.csv.

    RESPONSES is wide (one row per person, one column per item, empty = not
    administered) or long (person,item,score[,group]).  PARAMS.csv gets the estimates,
    their standard errors and item fit (infit/outfit mean squares, S-X2).
    """
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
        anchor_ids = _check_anchors(anchors, anchors_path, data) if anchors else []
        check_item_variance(data, skip=anchor_ids)
    if engine == "girth" and data.groups is not None:
        raise click.UsageError(f"{responses} has a group column; --engine girth supports "
                               "single-group calibration only; use --engine native")

    _info(quiet, f"{responses}: {data.n_persons} persons, {data.n_items} items"
                 + (f", {len(anchor_ids)} anchors" if anchor_ids else "")
                 + (f", groups {', '.join(sorted(set(data.groups)))}"
                    if data.groups is not None else ""))
    result = _run_calibration(data, model, anchors, engine, quiet)
    if not result.converged:
        _warn(f"calibration did not converge after {result.n_iter} cycles; "
              "check the items with large standard errors")

    _info(quiet, "computing item fit ...")
    fit = _item_fit(result.params, data)
    html = None
    if report_path:
        _info(quiet, "drawing the report ...")
        html = _calibration_report(result, data, model, engine, anchor_ids, fit, responses)

    params_text = format_params(result.params, fit)
    if html is not None:
        with atomic_write(report_path) as handle:
            handle.write(html)
    with atomic_write(out_path) as handle:
        handle.write(params_text)
    _info(quiet, f"wrote {out_path}: {result.params.n_items} items ({model}, {engine}); "
                 f"loglik {result.loglik:.2f}, AIC {result.aic:.1f}, BIC {result.bic:.1f}, "
                 f"{result.n_iter} cycles" + (f"; report {report_path}" if report_path else ""))


def _check_anchors(anchors: ItemParams, anchors_path: str, data: ResponseData) -> list[str]:
    """Anchor item ids, after checking every anchor item is a column of the responses."""
    columns = {str(i) for i in data.item_ids}
    for item in anchors.item_ids:
        if str(item) not in columns:
            raise InputError(anchors_path, None, "item_id",
                             f"anchor item '{item}' is not in {data.path}")
    return [str(i) for i in anchors.item_ids]


def _check_girth_model(model: str) -> None:
    """girth fits only some models (no PCM; its 3PL is broken under numpy 2)."""
    from .girth_engine import GIRTH_MODELS

    if model not in GIRTH_MODELS:
        raise click.UsageError(f"--engine girth supports --model {', '.join(GIRTH_MODELS)}; "
                               "use --engine native")


def _run_calibration(data: ResponseData, model: str, anchors: ItemParams | None,
                     engine: str, quiet: bool) -> Any:
    """Run the chosen engine (native with a progress bar); its errors become messages.

    The engines raise ValueError naming the item for items they cannot estimate (too few
    responses, an empty category), which is a property of the response file.
    """
    try:
        if engine == "girth":
            from .girth_engine import calibrate_girth

            _info(quiet, "calibrating with girth ...")
            try:
                return calibrate_girth(data.matrix, model, item_ids=data.item_ids)
            except RuntimeError as exc:  # girth's own failures (e.g. 3PL under numpy 2)
                raise click.ClickException(f"girth: {exc}") from exc

        from .calibration import calibrate as calibrate_items

        max_iter = 500
        progress = _EMProgress(quiet, max_iter)
        try:
            return calibrate_items(data.matrix, model, groups=data.groups, anchors=anchors,
                                   item_ids=data.item_ids, max_iter=max_iter,
                                   progress=progress)
        finally:
            progress.close()
    except ValueError as exc:
        raise click.ClickException(f"{data.path}: {exc}") from exc


def _item_fit(params: ItemParams, data: ResponseData) -> dict[str, np.ndarray]:
    """Infit/outfit mean squares (at EAP abilities) and S-X2 with its p-value per item."""
    from .estimation import eap
    from .fit import item_fit, sx2

    theta = eap(params, data.matrix).theta
    mnsq = item_fit(params, data.matrix, theta)
    s = sx2(params, data.matrix)
    return {"infit": np.asarray(mnsq.infit), "outfit": np.asarray(mnsq.outfit),
            "sx2": np.asarray(s.statistic), "sx2_p": np.asarray(s.p_value)}


def _calibration_report(result: Any, data: ResponseData, model: str, engine: str,
                        anchor_ids: Sequence[str], fit: Mapping[str, np.ndarray],
                        responses: str) -> str:
    """The HTML report of one calibration run."""
    from .report import build_report

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
                        summary=summary, fit=fit, history=result.history)


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
@click.option("--pv", "n_pv", type=click.IntRange(min=0), default=0, show_default=True,
              help="Number of plausible values per person (pv1..pvN).")
@click.option("--seed", type=int, default=None, help="Random seed for plausible values.")
@click.option("--quiet", is_flag=True, help="No messages (for scripts).")
def score(responses: str, params_path: str, method: str, out_path: str, id_col: str | None,
          n_pv: int, seed: int | None, quiet: bool) -> None:
    """Estimate abilities for RESPONSES.csv with known item parameters.

    Writes SCORES.csv with person_id, theta, se (and pv1..pvN with --pv N).
    """
    from .estimation import estimate

    with _user_errors():
        params = read_params(params_path)
        data = read_responses(responses, id_col=id_col, max_scores=_max_scores(params))
        params = _match_params(params, params_path, data)
    with _user_errors(ValueError):
        estimates = estimate(params, data.matrix, method=method)
        pvs = _plausible_values(params, data, n_pv, seed) if n_pv else None
    write_scores(out_path, data.person_ids, estimates, pvs)
    theta = np.asarray(estimates.theta, dtype=float)
    ok = np.isfinite(theta)
    _info(quiet, f"wrote {out_path}: {data.n_persons} persons ({method}"
                 + (f", {n_pv} plausible values" if n_pv else "") + f"); theta mean "
                 f"{np.mean(theta[ok]):.3f}, SD {np.std(theta[ok]):.3f}"
                 + (f"; {int((~ok).sum())} persons without an estimate" if (~ok).any() else ""))


def _plausible_values(params: ItemParams, data: ResponseData, n_pv: int,
                      seed: int | None) -> np.ndarray:
    """(n_persons, n_pv) plausible values from the posterior under an N(0, 1) prior."""
    from .plausible import plausible_values

    rng = np.random.default_rng(seed)
    return np.asarray(plausible_values(params, data.matrix, n_pv, rng=rng))


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
    """Differential item functioning of each item between a focal and a reference group."""
    with _user_errors():
        params = read_params(params_path)
        data = read_responses(responses, id_col=id_col, group_col=group_col,
                              max_scores=_max_scores(params))
        params = _match_params(params, params_path, data)
        focal_mask = _focal_mask(data, group_col, focal)
    with _user_errors(ValueError):
        header, rows = _dif_table(params, data, focal_mask, method)
    if out_path:
        write_table(out_path, header, rows)
        flagged = [r[0] for r in rows if "C" in [str(v) for v in r]]
        click.echo(f"wrote {out_path}: {len(rows)} items"
                   + (f"; ETS class C: {', '.join(flagged)}" if flagged else ""), err=True)
    else:
        click.echo(_text_table(header, rows))


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


def _dif_table(params: ItemParams, data: ResponseData, focal: np.ndarray,
               method: str) -> tuple[list[str], list[list[Any]]]:
    """Per-item DIF table for the chosen method(s)."""
    from .dif import logistic_dif, mantel_haenszel

    header = ["item_id"]
    columns: list[Sequence[Any]] = []
    if method in ("mh", "both"):
        mh = mantel_haenszel(data.matrix, focal)
        header += ["mh_alpha", "mh_d_dif", "mh_chi2", "mh_p", "ets_class"]
        columns += [mh.alpha, mh.delta, mh.chi2, mh.p_value, mh.ets_class]
    if method in ("logistic", "both"):
        lr = logistic_dif(data.matrix, focal)
        header += ["lr_chi2_uniform", "lr_p_uniform", "lr_chi2_nonuniform", "lr_p_nonuniform"]
        columns += [lr.chi2_uniform, lr.p_uniform, lr.chi2_nonuniform, lr.p_nonuniform]
    rows = [[str(item)] + [col[j] for col in columns] for j, item in enumerate(params.item_ids)]
    return header, rows


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
              help="Write NEW's parameters transformed to REF's scale (LINKED.csv).")
def link(new_path: str, ref_path: str, method: str, out_path: str | None) -> None:
    """Put NEW.csv's item parameters on the scale of REF.csv through their common items.

    Prints the constants A and B of theta_ref = A * theta_new + B.
    """
    with _user_errors():
        new = read_params(new_path)
        ref = read_params(ref_path)
        common = _common_items(new, new_path, ref, ref_path)
    with _user_errors(ValueError):
        A, B, linked = _run_link(new, ref, common, method)
    click.echo(f"A = {A:.6f}\nB = {B:.6f}\n({method}, {len(common)} common items)")
    if out_path:
        write_params(out_path, linked)
        click.echo(f"wrote {out_path}: {linked.n_items} items on the scale of {ref_path}",
                   err=True)


def _common_items(new: ItemParams, new_path: str, ref: ItemParams, ref_path: str) -> list[str]:
    """Ids in both banks (NEW's order); the same model on both sides."""
    ref_model = {str(i): str(m) for i, m in zip(ref.item_ids, ref.model, strict=True)}
    common = [str(i) for i in new.item_ids if str(i) in ref_model]
    if not common:
        raise InputError(new_path, None, "item_id", f"no item in common with {ref_path}")
    for item, model in zip(new.item_ids, new.model, strict=True):
        if str(item) in ref_model and ref_model[str(item)] != str(model):
            raise InputError(new_path, None, "model", f"common item '{item}' is {model} here "
                             f"but {ref_model[str(item)]} in {ref_path}")
    return common


def _run_link(new: ItemParams, ref: ItemParams, common: list[str],
              method: str) -> tuple[float, float, ItemParams]:
    from . import linking

    funcs: dict[str, Callable[..., Any]] = {
        "mean-mean": linking.mean_mean, "mean-sigma": linking.mean_sigma,
        "stocking-lord": linking.stocking_lord, "haebara": linking.haebara}
    result = funcs[method](new.subset(common), ref.subset(common))
    A, B = float(result.A), float(result.B)
    return A, B, linking.apply_transform(new, A, B)


# ---------------------------------------------------------------------------- standalone

main = click.Group(name="scoring", commands=[calibrate, score, dif, link],
                   help="Offline IRT tools (same commands as `learningcity ...`).")

if __name__ == "__main__":  # pragma: no cover
    main()
