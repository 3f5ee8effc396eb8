"""A campaign's weights: design weights -> nonresponse -> post-stratification or raking ->
optional trimming, stored per sampled invitation with every step.

Steps (statistics in :mod:`monitoring.weights`):

1. **Design weight** w0 = 1/π for every sampled, non-void invitation (``Invitation.pi``).
   An invitation without π (open enrolment) gets N_h / n_h of its stratum
   (``CampaignStratum.population`` over the invitations in the stratum).
2. **Nonresponse** within strata (weighting classes). A respondent has *completed every
   instrument* of the campaign. A stratum with no respondent is collapsed into a
   neighbour: the stratum with respondents sharing the most stratum-variable values
   (``CampaignStratum.values``, e.g. the same street), ties broken by the nearest name in
   sort order. ``collapse=False`` refuses instead, naming the stratum. The collapsing is
   stored in the run's ``method``.
3. **Calibration** to the population margin (the active one, or ``margin_id``): its cells
   are restricted to the campaign's district (when ``district`` is a margin variable) and
   the remaining variables (e.g. age band x sex) are used: ``poststratify`` to the crossed
   cells, or ``rake`` to each variable's marginal totals. A person's values come from
   their answers (survey, else test background, else invitation prefill). A variable no
   respondent has is summed out (recorded); one that only some lack is an error naming
   them. Without any margin for the district the step is skipped and the reason stored.
4. **Trimming** (optional): cap at ``trim_median_multiple`` x median, the trimmed amount
   spread additively over the other weights (R's ``trimWeights``); after a calibration the
   weights are trimmed and re-calibrated in turn until the margins hold (1e-8) and no weight
   is above the cap (:func:`monitoring.stats.calibration.trim_and_recalibrate`).

The run's ``method`` record keeps the calibration (method, variables, the population
totals of its cells), which the respondent table hands to estimation so that standard
errors are calibration-aware (:func:`monitoring.results.aggregate.build_design`).

Every run is stored (:class:`WeightRun`, summary from ``WeightSteps.summary()``) with a
:class:`RespondentWeight` for every sampled invitation (0 for nonrespondents); earlier
runs are kept but no longer current. Re-running with the same inputs returns the current
run unchanged (idempotent).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from monitoring.fieldwork.entry import instruments_of, refresh_statuses
from monitoring.fieldwork.models import Campaign, CampaignStratum, Invitation
from monitoring.results.models import PopulationMargin, RespondentWeight, WeightRun
from monitoring.results.respondents import CampaignSources, campaign_sources, person_answers
from monitoring.stats import calibration as C
from monitoring.stats import weights as W

METHODS = ("poststratify", "rake")


class WeightingError(ValueError):
    """Weights that cannot be computed; the message names the stratum, cell or person."""


def _clean(value: Any) -> Any:
    """JSON-safe numbers (NaN -> None) for stored summaries."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def active_margin(db: Session, margin_id: int | None = None) -> PopulationMargin | None:
    """The margin given by id, else the most recently uploaded active one."""
    if margin_id is not None:
        margin = db.get(PopulationMargin, margin_id)
        if margin is None:
            raise WeightingError(f"no population margin with id {margin_id}")
        return margin
    return db.scalar(sa.select(PopulationMargin).where(PopulationMargin.active.is_(True))
                     .order_by(PopulationMargin.uploaded_at.desc(),
                               PopulationMargin.id.desc()))


def _collapse_map(strata: list[str], with_respondents: set[str],
                  values: dict[str, dict[str, Any]], allow: bool) -> dict[str, str]:
    """stratum -> the nonresponse cell it is weighted in."""
    mapping = {s: s for s in strata}
    ordered = sorted(strata)
    donors = [s for s in ordered if s in with_respondents]
    for s in ordered:
        if s in with_respondents:
            continue
        if not allow:
            raise WeightingError(f"stratum {s!r} has no respondents: nonresponse cannot be "
                                 "adjusted within it (allow collapsing into a neighbour)")
        if not donors:
            raise WeightingError("no stratum has respondents: nothing to weight")
        here = values.get(s, {})
        pos = ordered.index(s)

        def rank(d: str, here: dict = here, pos: int = pos) -> tuple[int, int, str]:
            shared = sum(1 for k, v in here.items() if values.get(d, {}).get(k) == v)
            return (-shared, abs(ordered.index(d) - pos), d)

        mapping[s] = min(donors, key=rank)
    return mapping


def _margin_targets(margin: PopulationMargin, district: str
                    ) -> tuple[list[str], pd.DataFrame]:
    """The margin's variables other than district and its cells for the district."""
    variables = [v for v in margin.variables if v != "district"]
    rows = []
    for cell in margin.cells:
        values = cell.values or {}
        if "district" in margin.variables and str(values.get("district")) != district:
            continue
        rows.append({**{v: str(values.get(v)) for v in variables},
                     "total": float(cell.population)})
    return variables, pd.DataFrame(rows, columns=[*variables, "total"])


def compute_weights(db: Session, campaign: Campaign, user: str, *,
                    margin_id: int | None = None, method: str = "poststratify",
                    trim_median_multiple: float | None = None,
                    collapse: bool = True, sources: CampaignSources | None = None
                    ) -> WeightRun:
    """Compute, store and return the campaign's current weight run (module docstring).

    ``sources``: what closing has already read of the sessions (statuses refreshed with
    them); without it they are read, and the statuses refreshed, here."""
    if method not in METHODS:
        raise WeightingError(f"unknown method {method!r}; choose poststratify or rake")
    if trim_median_multiple is not None and not trim_median_multiple > 1:
        raise WeightingError("trim_median_multiple must be greater than 1")
    if sources is None:
        sources = campaign_sources(db, campaign)
        refresh_statuses(db, campaign, sources.finished())
    invitations = list(db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id, Invitation.status != "void")
        .order_by(Invitation.stratum, Invitation.id)
        .execution_options(populate_existing=True)))
    if not invitations:
        raise WeightingError(f"campaign {campaign.code} has no invitations to weight")
    strata_rows = {s.stratum: s for s in db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id))}
    per_stratum = pd.Series([i.stratum for i in invitations]).value_counts().to_dict()
    w0 = []
    for inv in invitations:
        if inv.pi is not None:
            if not 0 < inv.pi <= 1:
                raise WeightingError(f"invitation {inv.public_id}: inclusion probability "
                                     f"{inv.pi!r} is not in (0, 1]")
            w0.append(1.0 / inv.pi)
        elif inv.stratum in strata_rows:
            w0.append(strata_rows[inv.stratum].population / per_stratum[inv.stratum])
        else:
            raise WeightingError(f"invitation {inv.public_id} has no selection probability "
                                 f"and its stratum {inv.stratum!r} has no population")
    w0 = np.asarray(w0, dtype=float)
    responded = np.array([i.status == "completed" for i in invitations])
    if not responded.any():
        raise WeightingError(f"campaign {campaign.code} has no respondents yet "
                             f"(completed: {', '.join(instruments_of(campaign))})")
    ids = [i.public_id for i in invitations]
    strata = [i.stratum for i in invitations]
    cells_map = _collapse_map(sorted(set(strata)), {s for s, r in zip(strata, responded) if r},
                              {k: v.values or {} for k, v in strata_rows.items()}, collapse)
    cells = [cells_map[s] for s in strata]
    params: dict[str, Any] = {"responded": "completed all of " + "+".join(
        instruments_of(campaign)), "nonresponse_cells": "stratum",
        "collapsed": {k: v for k, v in cells_map.items() if k != v}}
    steps = W.WeightSteps.start(ids, w0, source="1/pi")
    nr = W.nonresponse_adjust(w0, responded, cells)
    steps = steps.add("nonresponse", nr.weights, cells="stratum",
                      collapsed=params["collapsed"])
    final = nr.weights.copy()
    resp_idx = np.flatnonzero(responded)

    margin = active_margin(db, margin_id)
    calibration: dict[str, Any] = {"method": None}
    recalibrate: tuple[pd.DataFrame, dict[str, Any]] | None = None
    if margin is not None:
        variables, targets = _margin_targets(margin, campaign.district_code)
        if targets.empty:
            if margin_id is not None:
                raise WeightingError(f"population margin {margin.name!r} has no cells for "
                                     f"district {campaign.district_code}")
            calibration["skipped"] = (f"margin {margin.name!r} has no cells for district "
                                      f"{campaign.district_code}")
        else:
            final, calibration, recalibrate = _calibrate(
                db, campaign, invitations, resp_idx, final, margin, variables, targets,
                method, sources)
            steps = steps.add(method, final, margin_id=margin.id, variables=calibration[
                "variables"])
    else:
        calibration["skipped"] = "no active population margin"
    params["calibration"] = calibration
    if trim_median_multiple is not None:
        m = float(trim_median_multiple)
        if recalibrate is not None:
            # trimming breaks the margins: trim and re-calibrate until both hold
            data, margins = recalibrate
            try:
                trimmed = C.trim_and_recalibrate(final[resp_idx], data, margins,
                                                 median_multiple=m)
            except ValueError as exc:
                raise WeightingError(f"trimming at {m:g} x median with the margins of "
                                     f"{calibration['margin']!r}: {exc}") from None
            extra = {"recalibrated": True, "rounds": int(trimmed.iterations),
                     "max_margin_error": float(trimmed.max_error)}
        else:
            trimmed = W.trim(final[resp_idx], median_multiple=m)
            extra = {"recalibrated": False}
        final = final.copy()
        final[resp_idx] = trimmed.weights
        steps = steps.add("trim", final, median_multiple=m, upper=float(trimmed.upper),
                          n_trimmed=int(trimmed.n_trimmed), **extra)
        params["trim"] = {"median_multiple": m, "upper": float(trimmed.upper),
                          "n_trimmed": int(trimmed.n_trimmed), **extra}
    method_record = _clean({"steps": list(steps.names), **params})
    summary = _clean(steps.summary().to_dict(orient="records"))
    step_names = steps.names[1:]
    per_person = {name: s.weights for name, s in zip(steps.names, steps.steps)}

    current = db.scalar(sa.select(WeightRun).where(WeightRun.campaign_id == campaign.id,
                                                   WeightRun.current.is_(True)))
    if current is not None and current.method == method_record and \
            _same_weights(current, invitations, steps.final):
        return current
    for old in db.scalars(sa.select(WeightRun).where(WeightRun.campaign_id == campaign.id,
                                                     WeightRun.current.is_(True))):
        old.current = False
    run = WeightRun(campaign_id=campaign.id, computed_by=user, method=method_record,
                    summary=summary, current=True)
    db.add(run)
    db.flush()
    db.add_all([RespondentWeight(
        run_id=run.id, invitation_id=inv.id, responded=bool(responded[k]),
        w_design=float(w0[k]),
        steps={name: float(per_person[name][k]) for name in step_names},
        weight=float(steps.final[k])) for k, inv in enumerate(invitations)])
    audit.record(db, actor=user, action="campaign.weights", target=campaign.code,
                     detail={"run": run.id, "steps": list(steps.names),
                             "respondents": int(responded.sum()),
                             "sampled": len(invitations)})
    db.flush()
    return run


def _same_weights(run: WeightRun, invitations: list[Invitation], final: np.ndarray) -> bool:
    stored = {w.invitation_id: w.weight for w in run.weights}
    if set(stored) != {i.id for i in invitations}:
        return False
    return all(math.isclose(stored[i.id], float(f), rel_tol=1e-12, abs_tol=1e-12)
               for i, f in zip(invitations, final))


def _calibrate(db: Session, campaign: Campaign, invitations: list[Invitation],
               resp_idx: np.ndarray, weights: np.ndarray, margin: PopulationMargin,
               variables: list[str], targets: pd.DataFrame, method: str,
               sources: CampaignSources
               ) -> tuple[np.ndarray, dict[str, Any], tuple[pd.DataFrame, dict[str, Any]]]:
    """The calibrated weights, the run's record of the calibration, and the respondents'
    cells with the margins that trimming re-calibrates to (crossed cells as one margin
    for post-stratification)."""
    respondents = [invitations[k] for k in resp_idx]
    answers = person_answers(db, campaign, respondents, sources)
    data = pd.DataFrame([{v: answers[i.public_id].get(v) for v in variables}
                         for i in respondents], columns=variables)
    used, dropped = [], []
    for v in variables:
        missing = data[v].isna()
        if missing.all():
            dropped.append(v)
        elif missing.any():
            who = [respondents[k].public_id for k in np.flatnonzero(missing.to_numpy())][:5]
            raise WeightingError(f"{method}: respondents without {v!r} "
                                 f"({', '.join(who)}): cannot place them in a cell of margin "
                                 f"{margin.name!r}")
        else:
            used.append(v)
    if not used:
        raise WeightingError(f"{method}: no respondent has any of the margin's variables "
                             f"({', '.join(variables)})")
    totals = targets.groupby(used, as_index=False)["total"].sum()
    w = weights[resp_idx]
    margins = {v: totals.groupby(v)["total"].sum() for v in used}
    try:
        if method == "poststratify":
            result = W.poststratify(w, data[used], used, totals)
            new = result.weights
        else:
            new = W.rake(w, data[used], margins).weights
    except ValueError as exc:
        raise WeightingError(f"{method} to margin {margin.name!r} in district "
                             f"{campaign.district_code}: {exc}") from None
    out = np.zeros_like(weights)
    out[resp_idx] = new
    if method == "poststratify":  # crossed cells: one margin over the cell key
        key = data[used].astype(str).agg(" × ".join, axis=1)
        cells = totals[used].astype(str).agg(" × ".join, axis=1)
        trim_data = pd.DataFrame({"_cell": key.to_numpy()})
        trim_margins = {"_cell": pd.Series(totals["total"].to_numpy(), index=cells.to_numpy())}
    else:
        trim_data, trim_margins = data[used].reset_index(drop=True), margins
    return out, {"method": method, "margin_id": margin.id, "margin": margin.name,
                 "variables": used, "summed_out": dropped,
                 "population": float(totals["total"].sum()),
                 "totals": [{**{v: str(r[v]) for v in used}, "total": float(r["total"])}
                            for r in totals.to_dict("records")]}, (trim_data, trim_margins)
