"""Calibration with the ``girth`` package, returned in the shape of :func:`calibrate`.

This adapter is the only place in ``scoring/`` that uses girth's orientation
(items x persons) and result dictionaries (``'Discrimination'``, ``'Difficulty'``).

Models
------
==========  ===========================  ==================================================
ours        girth function               notes
==========  ===========================  ==================================================
``2pl``     ``twopl_mml`` (= grm_mml)    N(0, 1) latent distribution
``grm``     ``grm_mml``
``gpcm``    ``pcm_mml``                  girth's "pcm" estimates a slope: it is our GPCM
``1pl``     ``onepl_mml``                one common slope, N(0, 1)
``rasch``   ``onepl_mml``                rescaled: the common slope becomes the latent SD
                                         (a = 1, SD free), i.e. the model of the native
                                         ``calibrate``; girth's own ``rasch_mml`` fixes SD=1
``pcm``     --                           girth has no MML PCM with a = 1: ValueError
``3pl``     ``threepl_mml``              crashes under numpy >= 2 (an array assigned to a
                                         scalar slot): RuntimeError explaining this
==========  ===========================  ==================================================

Missing data
------------
girth marks missing responses with ``girth.INVALID_RESPONSE`` (-99999) in an integer
matrix.  ``grm_mml``/``twopl_mml`` and ``pcm_mml`` mask these entries out of the
likelihood (the partial integral of a missing response is set to 1), and
``onepl_mml`` does the same through its pattern table, so NaN-coded designs are
estimated correctly in principle.  But girth always works on dense items x persons
arrays and loops over items in Python, so sparse adaptive designs gain nothing, and its
difficulty start values / look-up tables are built from the observed proportions only.
``threepl_mml`` turns missing entries into a constant factor 0.5 (harmless), if it ran.

girth's own options (``max_iteration`` = 25, ``quadrature_n`` = 41, ``quadrature_bounds``
= (-4.5, 4.5), ``use_LUT`` = True, ...) can be passed as keyword arguments.  girth
computes no standard errors (NaN here) and does not report iterations or convergence.
The log-likelihood, AIC and BIC are computed here with
:func:`scoring.calibration.marginal_loglik` at girth's estimates (41-point grid on
[-6, 6]), so they are comparable with the native engine.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scoring import catalogue
from scoring.calibration import CalibrationResult, marginal_loglik
from scoring.params import ItemParams

__all__ = ["GIRTH_MODELS", "calibrate_girth"]

GIRTH_MODELS = catalogue.engine_models("girth")
#: the girth function behind each model it has (3PL's is broken under numpy >= 2)
_GIRTH_FUNCTION = {"rasch": "onepl_mml", "1pl": "onepl_mml", "2pl": "twopl_mml",
                   "grm": "grm_mml", "gpcm": "pcm_mml", "3pl": "threepl_mml"}


def _girth_matrix(responses: np.ndarray, item_ids: np.ndarray, min_responses: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """NaN persons x items -> int items x persons with girth's INVALID_RESPONSE.

    Returns the girth matrix and the number of categories per item.  Raises ValueError
    naming the item for what girth would silently mis-handle (empty middle categories are
    recoded by girth, constant items break its start values).
    """
    import girth  # optional dependency: only this engine needs it

    r = np.asarray(responses, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"responses must be 2-D (persons x items), got shape {r.shape}")
    observed = ~np.isnan(r)
    vals = r[observed]
    if vals.size and (np.any(vals < 0) or np.any(vals != np.round(vals))):
        raise ValueError("responses must be NaN or integer categories 0, 1, 2, ...")
    ncat = np.zeros(r.shape[1], dtype=int)
    for j in range(r.shape[1]):
        col = r[observed[:, j], j].astype(np.int64)
        name = item_ids[j]
        if col.size < min_responses:
            raise ValueError(f"item {name}: only {col.size} responses "
                             f"(at least {min_responses} needed)")
        counts = np.bincount(col)
        if np.count_nonzero(counts) < 2:
            raise ValueError(f"item {name}: no response variance (all responses "
                             f"= {int(np.argmax(counts))})")
        if np.any(counts == 0):
            raise ValueError(f"item {name}: no responses in category "
                             f"{int(np.flatnonzero(counts == 0)[0])} of 0..{counts.size - 1}")
        ncat[j] = counts.size
    keep = observed.any(axis=1)
    out = np.where(observed, np.nan_to_num(r, nan=0.0), girth.INVALID_RESPONSE)
    return out[keep].astype(np.int64).T.copy(), ncat


def calibrate_girth(responses: np.ndarray, model: str, *,
                    item_ids: Sequence[str] | np.ndarray | None = None,
                    min_responses: int = 10,
                    **options: Any) -> CalibrationResult:
    """Calibrate with girth's MML routines.

    Parameters
    ----------
    responses : (n_persons, n_items) float
        Categories ``0..K-1``, NaN = not administered (persons with no response are
        dropped).
    model : str
        One of ``GIRTH_MODELS``; ``pcm`` and ``3pl`` raise (see module docstring).
    item_ids : (n_items,) str, optional
        Defaults to ``item1 .. itemJ``.
    min_responses : int
        Items with fewer observed responses raise ``ValueError``.
    **options
        girth estimation options (``max_iteration``, ``quadrature_n``, ...).

    Returns
    -------
    CalibrationResult
        SEs are NaN; ``n_iter`` is 0 (girth does not report it).

    Raises
    ------
    ValueError
        Unknown or unsupported model, bad responses, items that cannot be estimated.
    RuntimeError
        girth's 3PL under numpy >= 2.
    """
    import girth  # optional dependency: only this engine needs it

    try:
        name = catalogue.canonical(model)
    except ValueError:
        name = str(model).lower()
    entry = catalogue.MODELS.get(name)
    r = np.asarray(responses, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"responses must be 2-D (persons x items), got shape {r.shape}")
    n_items = r.shape[1]
    ids = (np.array([f"item{j + 1}" for j in range(n_items)]) if item_ids is None
           else np.asarray(item_ids).astype(str))
    if ids.shape != (n_items,):
        raise ValueError(f"item_ids has shape {ids.shape}, expected ({n_items},)")
    if entry is not None and entry.family == "gpcm" and entry.unit_slope:
        raise ValueError("girth has no MML partial credit model with a fixed slope of 1 "
                         "(its pcm_mml estimates a slope); use model 'gpcm' with girth or "
                         "the native engine for 'pcm'")
    if name not in _GIRTH_FUNCTION:
        raise ValueError(f"model {model!r} is not available with girth; "
                         f"choose one of {GIRTH_MODELS}")
    function = _GIRTH_FUNCTION[name]
    data, ncat = _girth_matrix(r, ids, min_responses)
    if entry.dichotomous and np.any(ncat != 2):
        bad = ids[ncat != 2][0]
        raise ValueError(f"item {bad}: model {name} needs 0/1 responses")
    opts = dict(options) if options else None

    c = np.zeros(n_items)
    group_sd = 1.0
    n_free = 0
    if function == "threepl_mml":
        try:
            out = girth.threepl_mml(data, options=opts)
        except ValueError as exc:
            if "sequence" in str(exc):
                raise RuntimeError(
                    "girth's threepl_mml fails under numpy >= 2 (girth 0.8 assigns an array "
                    "to a scalar element: 'setting an array element with a sequence'); "
                    "use the native engine for 3PL") from exc
            raise
        a = np.asarray(out["Discrimination"], dtype=float)
        b = np.asarray(out["Difficulty"], dtype=float)[:, None]
        c = np.asarray(out["Guessing"], dtype=float)
        n_free = 3 * n_items
    elif function == "onepl_mml":
        out = girth.onepl_mml(data, options=opts)
        a_common = float(np.squeeze(out["Discrimination"]))
        b = np.asarray(out["Difficulty"], dtype=float)[:, None]
        n_free = n_items + 1
        if entry.unit_slope:
            # N(0,1) with common slope s  ==  slope 1 with theta ~ N(0, s^2)
            b = b * a_common
            group_sd = a_common
            a = np.ones(n_items)
        else:
            a = np.full(n_items, a_common)
    elif function in ("twopl_mml", "grm_mml"):
        out = girth.grm_mml(data, options=opts)
        a = np.asarray(out["Discrimination"], dtype=float)
        b = np.atleast_2d(np.asarray(out["Difficulty"], dtype=float))
        if b.shape[0] != n_items:
            b = b.T
        n_free = int(n_items + (ncat - 1).sum())
    else:  # gpcm
        out = girth.pcm_mml(data, options=opts)
        a = np.asarray(out["Discrimination"], dtype=float)
        b = np.asarray(out["Difficulty"], dtype=float)
        n_free = int(n_items + (ncat - 1).sum())

    width = int(ncat.max()) - 1
    bmat = np.full((n_items, max(width, 1)), np.nan)
    for j in range(n_items):
        bmat[j, :ncat[j] - 1] = b[j, :ncat[j] - 1]
    params = ItemParams(item_ids=ids, model=np.full(n_items, name), a=a, b=bmat, c=c,
                        n_categories=ncat, se_a=np.full(n_items, np.nan),
                        se_b=np.full(bmat.shape, np.nan), se_c=np.full(n_items, np.nan),
                        latent_sd=group_sd)
    if entry.unit_slope:
        n_free = n_items + 1          # difficulties + latent SD
    loglik = marginal_loglik(params, r, group_sds=np.array([group_sd]))
    n_persons = int((~np.isnan(r)).any(axis=1).sum())
    girth_opts = girth.validate_estimation_options(opts)
    note = (f"girth MML ({function}); quadrature "
            f"{girth_opts['quadrature_n']} points on "
            f"{tuple(girth_opts['quadrature_bounds'])}, max_iteration "
            f"{girth_opts['max_iteration']}; latent N(0, 1)"
            + (" with the common slope turned into the latent SD (Rasch metric)"
               if entry.unit_slope else "")
            + ". girth reports no SEs, iterations or convergence; loglik/AIC/BIC computed "
              "by scoring.calibration.marginal_loglik (41 points on [-6, 6]).")
    return CalibrationResult(params=params, group_means=np.zeros(1),
                             group_sds=np.array([group_sd]),
                             group_labels=np.array(["all"], dtype=object), loglik=loglik,
                             aic=-2 * loglik + 2 * n_free,
                             bic=-2 * loglik + n_free * np.log(n_persons),
                             n_params=n_free, n_iter=0, converged=True, history=(),
                             method_note=note, group_mean_se=np.full(1, np.nan),
                             group_sd_se=np.full(1, np.nan))

