"""Ability of a campaign's respondents: plausible values drawn from each finished test
session's scored answers, on the reporting scale (read by :mod:`respondents`).

The values are drawn under a conditioning model (a latent regression, as in NAEP and
PISA): θ ~ N(x'β, σ²) with x the dummies of the reporting variables (district, age band,
sex, education and the population-group flags), fitted per calibration with the survey
weights (:func:`scoring.plausible.fit_latent_regression`). Means and level shares by
those variables computed from the values are then not pulled towards the campaign mean,
as they are under one N(0, 1) prior (with a 12-item test a 1.2 SD gap comes out about a
quarter too small).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from assessment.sessions import ScoredAnswers
from itembank.services import calibration_info, version_item_ids
from learningcity.people import CHOICES, GROUP_ORDER, groups_of
from monitoring.fieldwork.models import Campaign
from scoring.plausible import fit_latent_regression, plausible_values

log = logging.getLogger(__name__)

#: plausible values drawn per respondent, and their columns in the respondent table
N_PV = 10
PV_COLUMNS: tuple[str, ...] = tuple(f"pv{m}" for m in range(1, N_PV + 1))

#: person variables of the conditioning model, dummy coded (the group flags follow)
CONDITIONING_FACTORS: tuple[str, ...] = ("district", "age_band", "sex", "education")
#: the level of a factor whose value is not known
MISSING_LEVEL = "missing"
#: the latent regression is fitted only with at least this many respondents per column
#: of its design beyond the columns themselves; with fewer, the N(0, 1) scale prior
MIN_RESIDUAL_DF = 20


def _pv_seed(campaign: Campaign, calibration_id: int) -> int:
    text = f"{campaign.code}:{campaign.seed or 0}:{calibration_id}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _level(value: Any) -> str:
    if isinstance(value, str):
        return value or MISSING_LEVEL
    return MISSING_LEVEL if value is None or pd.isna(value) else str(value)


def _level_order(factor: str, seen: set[str]) -> list[str]:
    """The levels seen, in the vocabulary's order (:data:`CHOICES`), others sorted, and
    ``missing`` last."""
    known = [code for code, _label in CHOICES[factor][1]] if factor in CHOICES else []
    rest = sorted(seen - set(known) - {MISSING_LEVEL})
    return [v for v in known if v in seen] + rest + (
        [MISSING_LEVEL] if MISSING_LEVEL in seen else [])


def _flags(person: Mapping[str, Any]) -> set[str]:
    """The groups a person is in: its ``group__<code>`` flags if it carries them, else
    derived from its answers (:func:`learningcity.people.groups_of`)."""
    if any(f"group__{code}" in person for code in GROUP_ORDER):
        return {code for code in GROUP_ORDER if person.get(f"group__{code}") == 1}
    return set(groups_of(dict(person)))


def conditioning_design(persons: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The covariates of the conditioning model, one row per person in order.

    Each factor of :data:`CONDITIONING_FACTORS` is dummy coded over the levels seen
    (a value that is not known is the level ``missing``), the first level seen in the
    vocabulary's order being the reference (absorbed by the intercept); columns are
    named ``<factor>=<level>``. Then one 0/1 column ``group__<code>`` per population
    group of :data:`GROUP_ORDER` with members and non-members. Levels without
    respondents have no column, so a factor seen at one level has none. Columns that
    are combinations of others (``group__older_adult`` of the age bands) are left to
    the fit, which drops them.
    """
    columns: dict[str, np.ndarray] = {}
    for factor in CONDITIONING_FACTORS:
        values = np.array([_level(p.get(factor)) for p in persons], dtype=object)
        for level in _level_order(factor, set(values.tolist()))[1:]:
            columns[f"{factor}={level}"] = (values == level).astype(float)
    groups = [_flags(p) for p in persons]
    for code in GROUP_ORDER:
        flag = np.array([float(code in g) for g in groups])
        if 0 < flag.sum() < flag.size:
            columns[f"group__{code}"] = flag
    return pd.DataFrame(columns, index=pd.RangeIndex(len(persons)), dtype=float)


def plausible_scores(db: Session, campaign: Campaign, answers: dict[str, ScoredAnswers],
                     persons: Mapping[str, Mapping[str, Any]] | None = None,
                     weights: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """public_id -> ``N_PV`` plausible values on the reporting scale, drawn from each
    finished session's scored answers (:func:`assessment.sessions.finished_answers`).

    ``persons``: public_id -> the respondent's reporting variables (``district``,
    ``age_band``, ``sex``, ``education`` and ``group__<code>`` flags or the answers
    they derive from); with them the values are drawn under the conditioning model
    (:func:`conditioning_design`), fitted per calibration with ``weights`` (public_id ->
    final weight; None: unweighted). Without ``persons``: under the N(0, 1) scale prior.
    A respondent missing from ``persons`` has every factor ``missing``; one missing
    from ``weights`` is an error. The seed is fixed per campaign and calibration.
    """
    if not answers:
        return {}
    if weights is not None and persons is None:
        raise ValueError("weights are used to fit the conditioning model: give persons too")
    by_cal: dict[int, list[tuple[str, ScoredAnswers]]] = {}
    for pid, a in sorted(answers.items()):
        by_cal.setdefault(a.calibration_id, []).append((pid, a))
    item_of = version_item_ids(db, {v for a in answers.values() for v in a.version_ids})
    out: dict[str, np.ndarray] = {}
    for cal_id, members in sorted(by_cal.items()):
        calibration = calibration_info(db, cal_id)
        column = {item.item_id: j for j, item in enumerate(calibration.items)}
        responses = np.full((len(members), len(calibration.items)), np.nan)
        for k, (_pid, a) in enumerate(members):
            for version_id, score in zip(a.version_ids, a.scores):
                j = column.get(item_of.get(version_id))
                if j is not None:
                    responses[k, j] = float(score)
        mean, sd = _prior(calibration.params, responses, [pid for pid, _a in members],
                          persons, weights, campaign.code)
        pv = plausible_values(calibration.params, responses, n_draws=N_PV,
                              prior_mean=mean, prior_sd=sd,
                              rng=np.random.default_rng(_pv_seed(campaign, cal_id)))
        scaled = np.asarray(calibration.to_scale(pv), dtype=float)
        for k, (pid, _a) in enumerate(members):
            out[pid] = scaled[k]
    return out


def _prior(params: Any, responses: np.ndarray, pids: list[str],
           persons: Mapping[str, Mapping[str, Any]] | None,
           weights: Mapping[str, float] | None, campaign_code: str
           ) -> tuple[Any, Any]:
    """Prior mean and SD of each respondent: the fitted conditioning model's, or the
    scale's calibrated latent distribution (``params.latent_mean``/``latent_sd``)
    without persons or with too few respondents for the design."""
    scale = (params.latent_mean, params.latent_sd)
    if persons is None:
        return scale
    design = conditioning_design([persons.get(pid, {}) for pid in pids])
    scored = int((~np.all(np.isnan(responses), axis=1)).sum())
    if scored < design.shape[1] + 1 + MIN_RESIDUAL_DF:
        log.info("campaign %s: %d scored respondents for %d covariates: plausible values "
                 "under the scale's prior N(%.3f, %.3f^2)", campaign_code, scored,
                 design.shape[1], *scale)
        return scale
    w = None
    if weights is not None:
        missing = [pid for pid in pids if pid not in weights]
        if missing:
            raise ValueError(f"campaign {campaign_code}: respondents without a weight "
                             f"({', '.join(missing[:5])})")
        w = np.array([float(weights[pid]) for pid in pids])
        bad = [pid for pid, x in zip(pids, w) if not (np.isfinite(x) and x >= 0)]
        if bad:
            raise ValueError(f"campaign {campaign_code}: respondents whose weight is not "
                             f"finite and >= 0 ({', '.join(bad[:5])})")
    fit = fit_latent_regression(params, responses, design, weights=w)
    if not fit.converged:
        log.warning("campaign %s: conditioning model not converged after %d iterations",
                    campaign_code, fit.n_iter)
    return fit.person_prior(design)
