"""The per-respondent analysis table of a campaign: what aggregation and exports read.

:func:`respondent_table` returns one row per *responding* person (invitation completed:
every instrument of the campaign finished) with the design, the current weight, the
grouping variables, the survey answers, plausible values and scale scores. It holds no
names, codes, contact data or free text: the respondent is the invitation's public id.

Columns
-------
``respondent``
    invitation public id.
``district``, ``street``
    the campaign's district (the frame the person was drawn from), the street (answer,
    else frame).
``stratum``, ``psu``, ``fpc``, ``ssu``, ``fpc2``
    the design as drawn, from :func:`monitoring.stats.sampling.design_columns` (what
    :meth:`monitoring.stats.design.Design.from_arrays` takes; ``design`` names them):

    * unit frame (stratified SRSWOR): the stratum, the respondent as its own PSU and
      ``fpc`` N_h, the stratum's frame units; no ``ssu``/``fpc2``;
    * cluster frame (PPS clusters, then persons): ``psu`` the cluster, ``ssu`` the
      respondent, ``fpc2`` M_i the cluster's population; a certainty cluster is a stratum
      of its own (``<stratum>|<cluster>``, ``fpc`` 1); any other stratum's ``fpc`` is
      n_h / mean(π1) of its responding clusters (first-stage fraction = their mean π1);
    * open (quota) campaign: not a probability sample; the quota stratum, each
      respondent its own PSU, ``fpc`` the stratum's population (a model of SRS within
      the quota cells), and ``design["probability"]`` is False.

    ``design["calibration"]`` holds the weights' calibration (method, variables and the
    population totals of its cells) when the weight run was calibrated, so that
    estimation can make the standard errors calibration-aware.
``weight``
    final weight of the campaign's current weight run (:mod:`monitoring.weighting`).
``age_band``, ``sex``, ``occupation``, ``education``
    answers (survey, else test background, else the invitation's prefill).
``group`` and ``group__<code>``
    population groups. ``group__<code>`` is 1/0 per group (a person may be in several);
    ``group`` is the first that applies in :data:`GROUP_ORDER` (or missing). Derivation:
    ``older_adult``: age band 60-69 or 70+ (or a frame's 60+);
    ``farmer``, ``industrial_worker``, ``migrant_worker``, ``civil_servant``: the
    occupation answer has that code; ``young_people``: age band 18-29, the only band
    wholly under 35 (30-44 straddles 35 and is not counted).
survey answers
    under the question names: single choice -> the code, multiple choice ->
    ``<q>__<choice>`` 0/1, numbers and rating items -> float, months -> ``YYYY-MM``.
    Free-text answers are left out.
``pv1`` .. ``pv10``, ``score``, ``level``
    plausible values on the reporting scale drawn from each finished test session's
    posterior under the conditioning model (:func:`monitoring.results.ability.
    plausible_scores`: a latent regression on district, age band, sex, education and the
    group flags, fitted with the final weights; the N(0, 1) prior for small campaigns),
    the calibration the session used, operational items only, with a seed fixed per
    campaign and calibration, so re-runs give identical values; the session's score and
    level.
``scale_<name>``
    survey scale scores (the IRT theta when the scale was IRT-scored, else the sum).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from assessment import sessions as test_sessions
from assessment.sessions import ScoredAnswers, TestSessionInfo
from learningcity.people import GROUP_ORDER, PERSON_FIELDS, groups_of
from monitoring.fieldwork.draw import frame_kind
from monitoring.fieldwork.entry import refresh_statuses
from monitoring.fieldwork.models import Campaign, CampaignStratum, FrameUnit, Invitation
from monitoring.results.ability import plausible_scores
from monitoring.results.models import RespondentWeight, WeightRun
from monitoring.stats import sampling
from surveys.services import campaign_responses, response_surveys


@dataclass(frozen=True)
class CampaignInfo:
    """What a table consumer needs to know about the campaign."""

    code: str
    district: str
    name: str
    closes_at: dt.datetime | None


@dataclass
class RespondentData:
    """The table, its campaign and its design: the names of the design columns
    (``strata``, ``psu``, ``fpc``, ``ssu``, ``fpc2``; None when the design has no such
    stage), ``probability`` (False for an open, quota campaign) and ``estimator`` (the
    variance estimator in words)."""

    frame: pd.DataFrame
    campaign: CampaignInfo
    design: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ what is read once

@dataclass(frozen=True)
class CampaignSources:
    """Everything the results wing reads of the test and survey packages for one campaign,
    read once (:func:`campaign_sources`) and handed to weighting and aggregation."""

    #: invitation public id -> its latest finished test session
    tests: dict[str, TestSessionInfo]
    #: invitation public id -> its finished survey response (:func:`campaign_responses`)
    responses: dict[str, dict[str, Any]]
    #: (survey code, version) -> the definitions those responses used
    surveys: dict[tuple[str, int], Any]
    #: invitation public id -> the scored answers plausible values are drawn from
    answers: dict[str, ScoredAnswers]

    def finished(self) -> dict[str, set[str]]:
        """Invitation public id -> the instruments finished (for the invitation statuses)."""
        out: dict[str, set[str]] = {}
        for pid in self.tests:
            out.setdefault(pid, set()).add("test")
        for pid in self.responses:
            out.setdefault(pid, set()).add("survey")
        return out


def campaign_sources(db: Session, campaign: Campaign) -> CampaignSources:
    """Read the campaign's finished test sessions, their scored answers, its survey
    responses and their definitions: one query set per campaign, whatever its size."""
    tests = (test_sessions.finished_sessions(db, campaign.code)
             if campaign.test_instrument else {})
    answers = (test_sessions.finished_answers(db, campaign.code)
               if tests else {})
    responses = ({r["invitation"]: r for r in campaign_responses(db, campaign.code)
                  if r.get("invitation")} if campaign.survey_code else {})
    surveys = response_surveys(db, responses.values()) if responses else {}
    return CampaignSources(tests=tests, responses=responses, surveys=surveys, answers=answers)


# ------------------------------------------------------------------ answers per person

def person_answers(db: Session, campaign: Campaign, invitations: list[Invitation],
                   sources: CampaignSources | None = None) -> dict[str, dict[str, Any]]:
    """public_id -> age band, sex, district, street, occupation, education: the survey's
    answer, else the test's background answer, else the invitation's prefill."""
    sources = sources or campaign_sources(db, campaign)
    tests, surveys = sources.tests, sources.responses
    out: dict[str, dict[str, Any]] = {}
    for inv in invitations:
        merged: dict[str, Any] = {}
        layers = [inv.prefill or {},
                  (tests[inv.public_id].background or {}) if inv.public_id in tests else {},
                  surveys.get(inv.public_id, {}).get("answers", {})]
        for layer in layers:
            for name in PERSON_FIELDS:
                value = layer.get(name)
                if isinstance(value, str) and value.strip():
                    merged[name] = value.strip()
        out[inv.public_id] = merged
    return out


# ------------------------------------------------------------------ survey answers

def _survey_columns(survey: Any, response: dict[str, Any]) -> dict[str, Any]:
    """A response's answers as table columns, by the survey definition it used."""
    answers = response.get("answers", {})
    out: dict[str, Any] = {}
    for f in survey.fields():
        if f.kind in ("text", "other_text") or f.name in PERSON_FIELDS:
            continue
        value = answers.get(f.name)
        if f.kind == "multiple_choice":
            chosen = set(value or [])
            for choice in survey.choices(f.question.choices):
                out[f"{f.name}__{choice.name}"] = float(choice.name in chosen) \
                    if value is not None else np.nan
        elif f.kind in ("integer", "decimal", "number", "rating"):
            try:
                out[f.name] = float(value) if value is not None else np.nan
            except (TypeError, ValueError):
                out[f.name] = np.nan
        else:
            out[f.name] = value if value is not None else np.nan
    for scale, result in (response.get("scales") or {}).items():
        theta, total = result.get("theta"), result.get("sum")
        out[f"scale_{scale}"] = float(theta) if theta is not None else (
            float(total) if total is not None else np.nan)
    return out


# ------------------------------------------------------------------ the table

#: the variance of an open (quota) campaign: a model, not its draw
QUOTA_ESTIMATOR = "SRS within the quota strata assumed: Taylor linearisation, fpc N_h"


def _two_stage(campaign: Campaign) -> bool:
    return campaign.mode == "sample" and frame_kind(campaign) == "cluster"


def design_of(campaign: Campaign) -> dict[str, Any]:
    """The names of the design columns of the campaign's respondent table, whether it is
    a probability sample, and its variance estimator (see the module docstring)."""
    two = _two_stage(campaign)
    probability = campaign.mode == "sample"
    estimator = (sampling.TWO_STAGE_ESTIMATOR if two else sampling.ONE_STAGE_ESTIMATOR
                 if probability else QUOTA_ESTIMATOR)
    return {"strata": "stratum", "psu": "psu", "fpc": "fpc",
            "ssu": "ssu" if two else None, "fpc2": "fpc2" if two else None,
            "probability": probability, "estimator": estimator}


def drawn_design(db: Session, campaign: Campaign, invitations: list[Invitation],
                 strata: dict[str, CampaignStratum]) -> sampling.DesignColumns:
    """The design of these invitations as drawn (:func:`sampling.design_columns`): a
    cluster's first-stage probability, certainty and population are read from its frame
    row, which the draw wrote."""
    ids = [inv.public_id for inv in invitations]
    labels = [inv.stratum for inv in invitations]
    try:
        if _two_stage(campaign):
            units = {row.id: row for row in db.execute(
                sa.select(FrameUnit.id, FrameUnit.unit_key, FrameUnit.psu, FrameUnit.pi1,
                          FrameUnit.certainty, FrameUnit.size)
                .where(FrameUnit.campaign_id == campaign.id, FrameUnit.selected.is_(True)))}
            drawn = []
            for inv in invitations:
                unit = units.get(inv.frame_unit_id)
                if unit is None or unit.pi1 is None or unit.size is None:
                    raise ValueError(f"invitation {inv.public_id} has no drawn cluster "
                                     "(frame row with pi1 and size)")
                drawn.append(unit)
            return sampling.design_columns(
                labels, ids, psu=[u.psu or u.unit_key for u in drawn],
                pi1=[u.pi1 for u in drawn], certainty=[u.certainty for u in drawn],
                cluster_size=[u.size for u in drawn])
        unknown = sorted({s for s in labels if s not in strata})
        if unknown:
            raise ValueError(f"stratum {unknown[0]!r} is not a stratum of the campaign")
        return sampling.design_columns(labels, ids,
                                       population=[strata[s].population for s in labels])
    except ValueError as exc:
        raise ValueError(f"campaign {campaign.code}: design: {exc}") from None


def current_run(db: Session, campaign: Campaign) -> WeightRun | None:
    return db.scalar(sa.select(WeightRun).where(WeightRun.campaign_id == campaign.id,
                                                WeightRun.current.is_(True))
                     .order_by(WeightRun.id.desc()))


def respondent_table(db: Session, campaign_code: str,
                     sources: CampaignSources | None = None) -> RespondentData:
    """One row per responding person of the campaign (see the module docstring).

    ``sources``: what closing has already read of the sessions (statuses refreshed with
    them); without it they are read, and the statuses refreshed, here. Raises
    LookupError for an unknown campaign and ValueError when the campaign has
    respondents but no current weight run (compute the weights first).
    """
    campaign = db.scalar(sa.select(Campaign).where(Campaign.code == campaign_code))
    if campaign is None:
        raise LookupError(f"no campaign {campaign_code!r}")
    if sources is None:
        sources = campaign_sources(db, campaign)
        refresh_statuses(db, campaign, sources.finished())
    info = CampaignInfo(code=campaign.code, district=campaign.district_code,
                        name=campaign.name, closes_at=campaign.closes_at)
    invitations = list(db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id, Invitation.status == "completed")
        .order_by(Invitation.stratum, Invitation.public_id)
        .execution_options(populate_existing=True)))
    design = design_of(campaign)
    if not invitations:
        return RespondentData(frame=pd.DataFrame(columns=["respondent", "weight"]),
                              campaign=info, design=design)
    run = current_run(db, campaign)
    if run is None:
        raise ValueError(f"campaign {campaign.code} has no weights yet: compute them first")
    weights = dict(db.execute(sa.select(RespondentWeight.invitation_id, RespondentWeight.weight)
                              .where(RespondentWeight.run_id == run.id)).all())
    strata = {s.stratum: s for s in db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id))}
    persons = person_answers(db, campaign, invitations, sources)
    wanted = {i.public_id for i in invitations}
    sessions = {pid: s for pid, s in sources.tests.items() if pid in wanted}
    pvs = plausible_scores(
        db, campaign, {pid: a for pid, a in sources.answers.items() if pid in wanted},
        persons={inv.public_id: {**persons.get(inv.public_id, {}),
                                 "district": campaign.district_code} for inv in invitations},
        weights={inv.public_id: float(weights[inv.id]) for inv in invitations
                 if inv.id in weights})
    calibration = (run.method or {}).get("calibration") or {}
    if calibration.get("method") in ("poststratify", "rake") and calibration.get("totals"):
        design["calibration"] = {k: calibration[k] for k in ("method", "variables", "totals")}
    surveys, definitions = sources.responses, sources.surveys
    drawn = drawn_design(db, campaign, invitations, strata)
    stages = {name: values for name, values in drawn.arrays().items() if values is not None}
    rows = []
    for k, inv in enumerate(invitations):
        person = persons.get(inv.public_id, {})
        groups = groups_of(person)
        row: dict[str, Any] = {
            "respondent": inv.public_id, "district": campaign.district_code,
            "street": person.get("street", np.nan),
            **{"stratum" if name == "strata" else name: values[k]
               for name, values in stages.items()},
            "weight": float(weights.get(inv.id, np.nan)),
            **{name: person.get(name, np.nan)
               for name in ("age_band", "sex", "occupation", "education")},
            "group": groups[0] if groups else np.nan,
            **{f"group__{code}": int(code in groups) for code in GROUP_ORDER},
        }
        if inv.public_id in surveys:
            response = surveys[inv.public_id]
            row.update(_survey_columns(
                definitions[(response["survey_code"], response["version"])], response))
        if inv.public_id in sessions:
            session = sessions[inv.public_id]
            row.update({f"pv{m + 1}": float(v) for m, v in enumerate(pvs[inv.public_id])})
            row["score"] = float(session.score) if session.score is not None else np.nan
            row["level"] = session.level
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["weight"].isna().any():
        missing = frame.loc[frame["weight"].isna(), "respondent"].tolist()[:5]
        raise ValueError(f"campaign {campaign.code}: respondents without a weight in the "
                         f"current run ({', '.join(missing)}): compute the weights again")
    return RespondentData(frame=frame, campaign=info, design=design)
