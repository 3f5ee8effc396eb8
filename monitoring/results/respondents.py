"""The per-respondent analysis table of a campaign: what aggregation and exports read.

:func:`respondent_table` returns one row per *responding* person (invitation completed:
every instrument of the campaign finished) with the design, the current weight, the
grouping variables, the survey answers, plausible values and scale scores. It holds no
names, codes, contact data or free text: the respondent is the invitation's public id.

Columns
-------
``respondent``
    invitation public id.
``district``, ``street``, ``stratum``
    the campaign's district (the frame the person was drawn from), the street (answer,
    else frame), the design stratum.
``psu``
    the cluster (street or community) of a two-stage design, else the respondent itself.
``fpc``
    what :meth:`monitoring.estimates.Design.from_frame` takes as ``fpc``: the stratum's
    *first-stage* population size, i.e. the number of frame rows in the stratum
    (``CampaignStratum.frame_rows``): N_h units for a unit frame, the number of PSUs
    (clusters) for a cluster frame, so that f_h = n_h / N_h is the first-stage sampling
    fraction.
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
``pv1`` .. ``pv5``, ``score``, ``level``
    plausible values on the reporting scale drawn from each finished test session's
    posterior (N(0, 1) prior, the calibration the session used, operational items only),
    with a seed fixed per campaign and calibration, so re-runs give identical values;
    the session's score and level.
``scale_<name>``
    survey scale scores (the IRT theta when the scale was IRT-scored, else the sum).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from assessment import sessions as test_sessions
from assessment.sessions import ScoredAnswers, TestSessionInfo
from itembank.services import calibration_info, version_item_ids
from learningcity.people import GROUP_ORDER, PERSON_FIELDS, groups_of
from monitoring.fieldwork.entry import refresh_statuses
from monitoring.fieldwork.models import Campaign, CampaignStratum, Invitation
from monitoring.results.models import RespondentWeight, WeightRun
from scoring.plausible import plausible_values
from surveys.services import campaign_responses, response_surveys

N_PV = 5


@dataclass(frozen=True)
class CampaignInfo:
    """What a table consumer needs to know about the campaign."""

    code: str
    district: str
    name: str
    closes_at: dt.datetime | None


@dataclass
class RespondentData:
    """The table, its campaign and the names of its design columns."""

    frame: pd.DataFrame
    campaign: CampaignInfo
    design: dict[str, str | None] = field(default_factory=dict)


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


# ------------------------------------------------------------------ plausible values

def _pv_seed(campaign: Campaign, calibration_id: int) -> int:
    text = f"{campaign.code}:{campaign.seed or 0}:{calibration_id}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def plausible_scores(db: Session, campaign: Campaign, answers: dict[str, ScoredAnswers]
                     ) -> dict[str, np.ndarray]:
    """public_id -> ``N_PV`` plausible values on the reporting scale, drawn from each
    finished session's scored answers (:func:`assessment.sessions.finished_answers`)."""
    if not answers:
        return {}
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
        pv = plausible_values(calibration.params, responses, n_draws=N_PV,
                              rng=np.random.default_rng(_pv_seed(campaign, cal_id)))
        scaled = np.asarray(calibration.to_scale(pv), dtype=float)
        for k, (pid, _a) in enumerate(members):
            out[pid] = scaled[k]
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
    cluster = any(i.psu is not None for i in db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id)))
    design = {"strata": "stratum", "psu": "psu", "fpc": "fpc"}
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
    pvs = plausible_scores(db, campaign, {pid: a for pid, a in sources.answers.items()
                                          if pid in wanted})
    surveys, definitions = sources.responses, sources.surveys
    rows = []
    for inv in invitations:
        person = persons.get(inv.public_id, {})
        stratum = strata.get(inv.stratum)
        groups = groups_of(person)
        row: dict[str, Any] = {
            "respondent": inv.public_id, "district": campaign.district_code,
            "street": person.get("street", np.nan), "stratum": inv.stratum,
            "psu": (inv.psu or inv.public_id) if cluster else inv.public_id,
            "fpc": float(stratum.frame_rows) if stratum is not None else np.nan,
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
