"""The simulated demo city: yearly campaigns 2023-2025 in every demo district.

A fresh ``pserve development.ini`` should show a city, not a sample of two districts: the
monitoring pages, trends, the district table and the map need every district and several
years. Simulating each resident through the test and survey services
(:mod:`monitoring.demo_results`) takes a quarter of a second per resident, far too long
for 12 districts x 3 years x 300+ residents. So this loader simulates the *respondent
tables* directly (vectorised numpy), with the columns :func:`monitoring.results.
respondents.respondent_table` gives a closed campaign, and publishes them through the
same pipeline a real close uses: :func:`monitoring.results.aggregate.compute_aggregates`
(design-based estimates, the publication rule, judgement against the targets) and
:func:`monitoring.results.aggregate.write_aggregates` (the monitoring database). Only
aggregates are written: no campaign, invitation or session rows, no person-level value.

**The design** of every district x year: a stratified simple random sample without
replacement of adult residents in two strata, 18-59 and 60+, with the older adults
**oversampled** (about 45 % of the sample, against 12-33 % of the adults) so that the
older-adult indicator (老年人经常参加老年教育的比例 > 26 %) is estimated from enough
respondents to pass the NCHS standard (``docs/suppression.md``) in every district. The
design weights N_h / n_h undo the oversampling; each respondent is its own PSU with
``fpc`` N_h. 300 + population / 5000 respondents per district and year (326-382).

**The city** (:data:`PROFILES`): twelve districts that differ in their share of older
adults, rurality (farmers), ability, training rate, older-adult education rate and share
of learning-type communities, all improving a little each year, so the verdicts differ
between districts and years (met, not met, not distinguishable). The frame indicator
(学习型社区（村）占比) is the share of each district's communities that are learning-type:
a community, once learning-type, stays so (a fixed random threshold per community).

Every campaign name starts with :data:`~monitoring.results.dashboard.SIMULATED_MARK`, so
the pages show their "simulated data" notice; the campaign codes are ``SIM-<district>-
<year>`` (never a real campaign's ``D01-202510-01`` form).

Measured (fresh SQLite, ``development.ini``, shared 2-core machine under load): the
first start takes 30-38 s in all, of which the city is 27-34 s (0.8-0.9 s per
district-year, most of it the plausible-value level shares); a second start adds
nothing.

Idempotent and seeded: a district-year whose run is in the monitoring database is left
alone; the others are simulated from the seed ``SEED + 100 x year + district number``, so
every start writes the same numbers. Off unless the settings ask for it
(:data:`SETTING`, ``development.ini`` sets it): other settings files, production and the
test suite's app starts get none.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pyramid.settings import asbool
from pyramid.threadlocal import get_current_registry
from sqlalchemy.orm import Session

from learningcity.districts import list_districts
from learningcity.people import GROUP_ORDER, OLDER_BANDS, YOUNG_BANDS
from monitoring.demo_results import DEMO_ACTOR, _monitoring_session
from monitoring.results.ability import PV_COLUMNS
from monitoring.results.aggregate import _writer, compute_aggregates, write_aggregates
from monitoring.results.dashboard import SIMULATED_MARK
from monitoring.results.indicators import load_catalogue
from monitoring.results.respondents import CampaignInfo, RespondentData
from monitoring.results.warehouse import MonitoringRun, design_label
from monitoring.stats.sampling import ONE_STAGE_ESTIMATOR

log = logging.getLogger(__name__)

#: the .ini setting that turns the demo city on (``development.ini``: true)
SETTING = "monitoring.demo_city"
YEARS: tuple[int, ...] = (2023, 2024, 2025)
SEED = 15_000_001
#: the yearly campaign's window closes on 30 November, 18:00 Asia/Shanghai (10:00 UTC)
CLOSES = (11, 30, 10)
#: respondents per district and year: MIN_RESPONDENTS + population / PER_PERSONS
MIN_RESPONDENTS, PER_PERSONS = 300, 5000
#: share of the sample drawn from the 60+ stratum (oversampled: the weights undo it)
OLDER_SAMPLE_SHARE = 0.45
#: adults (18+) among the residents
ADULT_SHARE = 0.84
#: age bands within each stratum (population shares)
YOUNGER_BANDS = (("18-29", 0.24), ("30-44", 0.38), ("45-59", 0.38))
OLDER_BANDS_P = (("60-69", 0.58), ("70+", 0.42))
STRATA = ("18-59", "60+")
#: yearly change of the training rate, the older-adult education rate and the share of
#: learning-type communities, and of the mean ability (theta)
TREND = {"training": 0.025, "elder": 0.03, "communities": 0.04, "theta": 0.06}


@dataclass(frozen=True)
class Profile:
    """A district of the simulated city in 2023 (see the module docstring)."""

    older: float          # share of the adults aged 60+
    elder: float          # older adults regularly in older-adult education
    training: float       # residents trained in the last 12 months
    communities: float    # learning-type communities among all
    n_communities: int
    theta: float          # mean ability shift
    rural: float          # weight of farming among occupations


#: the districts' profiles (learningcity.demo's D01-D12); a district not listed gets
#: :data:`DEFAULT_PROFILE`
PROFILES: dict[str, Profile] = {
    "D01": Profile(.24, .30, .58, .82, 46, .15, .03),
    "D02": Profile(.27, .22, .50, .76, 38, -.10, .10),
    "D03": Profile(.22, .27, .55, .80, 42, .05, .05),
    "D04": Profile(.18, .18, .47, .70, 30, -.05, .08),
    "D05": Profile(.12, .33, .64, .88, 24, .35, .01),
    "D06": Profile(.31, .16, .42, .64, 58, -.30, .35),
    "D07": Profile(.23, .26, .53, .79, 44, .05, .06),
    "D08": Profile(.14, .20, .60, .73, 26, .20, .04),
    "D09": Profile(.26, .35, .57, .85, 36, .00, .12),
    "D10": Profile(.33, .14, .40, .60, 64, -.35, .40),
    "D11": Profile(.30, .21, .45, .68, 52, -.20, .30),
    "D12": Profile(.28, .29, .51, .77, 48, -.10, .20),
}
DEFAULT_PROFILE = Profile(.24, .25, .52, .76, 40, 0.0, .10)

OCCUPATIONS = ("student", "farmer", "industrial_worker", "migrant_worker", "civil_servant",
               "service", "self_employed", "retired", "other")
EDUCATION = ("primary", "junior", "senior", "college")
#: the reporting scale (itembank.scale: mean 500, SD 100 on the theta scale)
SCALE_MEAN, SCALE_SD = 500.0, 100.0


def campaign_code(district: str, year: int) -> str:
    return f"SIM-{district}-{year}"


def campaign_name(district: str, year: int) -> str:
    """The simulated mark first, then what it is (at most 200 characters)."""
    return (f"{SIMULATED_MARK} {year} 演示城市年度监测（模拟居民，非真实数据） "
            f"Demo city yearly monitoring {year} (simulated residents, not real data)")


def closes_at(year: int) -> dt.datetime:
    month, day, hour = CLOSES
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def sample_size(population: int | None) -> int:
    return MIN_RESPONDENTS + int(population or 0) // PER_PERSONS


# ------------------------------------------------------------------ simulation

def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows: probabilities, not necessarily normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return (u[:, None] >= cum).sum(axis=1)


def _occupation_probs(kind: np.ndarray, rural: float) -> np.ndarray:
    """Occupation probabilities (:data:`OCCUPATIONS` order) for young (0), middle-aged (1)
    and older (2) adults in a district of this rurality."""
    table = np.array([
        # student farmer industrial migrant civil service self retired other
        [.25, .02 + .30 * rural, .18, .14, .07, .20, .08, .00, .03],
        [.00, .02 + .60 * rural, .20, .13, .08, .22, .14, .02, .04],
        [.00, .02 + .80 * rural, .02, .01, .01, .03, .03, .70, .08],
    ])
    return table[kind]


def simulate(district: str, year: int, population: int | None,
             profile: Profile | None = None, ability: bool = True
             ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The respondent table of one district-year and its frame's communities (seeded).
    ``ability``: with the plausible values (the mean ability and level shares take
    most of the aggregation time; tests of the indicators leave them out)."""
    p = profile or PROFILES.get(district, DEFAULT_PROFILE)
    number = int("".join(ch for ch in district if ch.isdigit()) or 0)
    rng = np.random.default_rng(SEED + 100 * year + number)
    step = year - YEARS[0]
    adults = int((population or 200_000) * ADULT_SHARE)
    n = sample_size(population)
    n_old = round(OLDER_SAMPLE_SHARE * n)
    sizes = {"18-59": n - n_old, "60+": n_old}
    totals = {"60+": round(adults * p.older)}
    totals["18-59"] = adults - totals["60+"]
    stratum = np.repeat(STRATA, [sizes[s] for s in STRATA])
    older = stratum == "60+"
    bands = np.empty(n, dtype=object)
    for s, choices in (("18-59", YOUNGER_BANDS), ("60+", OLDER_BANDS_P)):
        where = stratum == s
        names, probs = zip(*choices, strict=True)
        bands[where] = np.array(names, dtype=object)[
            rng.choice(len(names), size=int(where.sum()), p=probs)]
    young = np.isin(bands, list(YOUNG_BANDS))
    kind = np.where(older, 2, np.where(young, 0, 1))
    sex = np.where(rng.random(n) < np.where(older, 0.54, 0.50), "female", "male")
    occupation = np.array(OCCUPATIONS, dtype=object)[
        _categorical(rng, _occupation_probs(kind, p.rural))]
    edu_probs = np.array([[.10, .30, .32, .28], [.18, .36, .28, .18], [.42, .34, .17, .07]])
    edu_probs[:, 0] += 0.15 * p.rural
    edu = _categorical(rng, edu_probs[kind])
    education = np.array(EDUCATION, dtype=object)[edu]
    theta = rng.normal(p.theta + 0.3 * (edu - 1.5) - 0.35 * older
                       + TREND["theta"] * step, 0.9)
    frame = pd.DataFrame({
        "respondent": [f"{district}-{year}-{i:04d}" for i in range(n)],
        "district": district, "stratum": stratum, "psu": np.arange(1, n + 1),
        "fpc": np.array([float(totals[s]) for s in stratum]),
        "weight": np.array([totals[s] / sizes[s] for s in stratum]),
        "age_band": bands, "sex": sex, "occupation": occupation, "education": education})
    flags = {}
    for code in GROUP_ORDER:
        member = (np.isin(bands, list(OLDER_BANDS)) if code == "older_adult" else young
                  if code == "young_people" else occupation == code)
        flags[f"group__{code}"] = member.astype(int)
    first = np.full(n, np.nan, dtype=object)
    for code in reversed(GROUP_ORDER):  # the first group that applies wins
        first = np.where(flags[f"group__{code}"] == 1, code, first)
    frame["group"] = first
    frame = frame.assign(**flags)
    # the two survey indicators
    training = np.clip(p.training + TREND["training"] * step + 0.05 * (edu - 1.5)
                       - 0.10 * older + 0.04 * young, 0.03, 0.97)
    trained = rng.random(n) < training
    frame["community_training"] = np.where(trained, "yes", "no")
    elder = np.clip(p.elder + TREND["elder"] * step + 0.04 * (edu - 1.5), 0.02, 0.95)
    r = rng.random(n)
    elder_answer = np.where(r < elder, "regular", np.where(r < elder + 0.30, "sometimes",
                                                           "never")).astype(object)
    frame["elder_education"] = np.where(older, elder_answer, np.nan)
    # ability: ten plausible values around the true ability, on the reporting scale
    pv = theta[:, None] + rng.normal(0, 0.4, size=(n, len(PV_COLUMNS)))
    if ability:
        frame = frame.assign(**{c: SCALE_MEAN + SCALE_SD * pv[:, m]
                                for m, c in enumerate(PV_COLUMNS)})
    # survey scales (sums of the rating items)
    motivation = 0.5 * theta + rng.normal(0, 0.85, n)
    frame["scale_motivation"] = np.clip(np.round(40 + 5 * motivation), 12, 60)
    frame["scale_self_directed"] = np.clip(np.round(38 + 4 * motivation
                                                    + rng.normal(0, 4, n)), 12, 60)
    frame["scale_satisfaction"] = np.where(
        trained, np.clip(np.round(rng.normal(19 + 0.5 * step, 3, n)), 5, 25), np.nan)
    # the frame's communities: learning-type below the year's share (a fixed threshold
    # per community, so a community stays learning-type once it is; evenly spread
    # thresholds, so the frame's share follows the profile closely)
    fixed = np.random.default_rng(SEED + number)
    thresholds = (fixed.permutation(p.n_communities) + fixed.random(p.n_communities)
                  ) / p.n_communities
    share = min(0.98, p.communities + TREND["communities"] * step)
    communities = [{"community": f"{district}C{c + 1:02d}",
                    "learning_community": "yes" if thresholds[c] < share else "no"}
                   for c in range(p.n_communities)]
    return frame, communities


DESIGN = {"strata": "stratum", "psu": "psu", "fpc": "fpc", "ssu": None, "fpc2": None,
          "probability": True, "estimator": ONE_STAGE_ESTIMATOR}


def respondent_data(district: str, year: int, population: int | None, ability: bool = True
                    ) -> tuple[RespondentData, list[dict[str, Any]]]:
    """The simulated table as :func:`~monitoring.results.respondents.respondent_table`
    gives it (campaign, design) and the frame's communities."""
    frame, communities = simulate(district, year, population, ability=ability)
    info = CampaignInfo(code=campaign_code(district, year), district=district,
                        name=campaign_name(district, year), closes_at=closes_at(year))
    return RespondentData(frame=frame, campaign=info, design=dict(DESIGN)), communities


def publish(db: Session, monitoring_db: Session, district: str, year: int,
            population: int | None, catalogue: Any = None, ability: bool = True) -> int:
    """Simulate one district-year and write its cells (replacing any); returns the rows."""
    data, communities = respondent_data(district, year, population, ability)
    catalogue = catalogue if catalogue is not None else load_catalogue(db)
    rows = compute_aggregates(data, catalogue, communities)
    design_text = design_label({k: DESIGN[k] for k in ("strata", "psu", "fpc", "ssu", "fpc2")},
                               ONE_STAGE_ESTIMATOR, True)
    write_aggregates(_writer(db, monitoring_db), data.campaign, rows, len(data.frame),
                     design_text, DEMO_ACTOR)
    return len(rows)


def enabled() -> bool:
    """Whether the app's settings ask for the demo city (:data:`SETTING`)."""
    settings = getattr(get_current_registry(), "settings", None) or {}
    return asbool(settings.get(SETTING, False))


def load(db: Session, monitoring_db: Session | None = None, *, force: bool = False,
         years: Sequence[int] = YEARS, ability: bool = True,
         progress: Callable[[str], None] | None = None) -> list[str]:
    """Write the simulated city's published cells when they are missing (idempotent);
    returns the campaign codes written. ``force``: even when :data:`SETTING` is off
    (tests); ``ability``: with the ability cells (see :func:`simulate`)."""
    if not (force or enabled()):
        return []
    districts = [d for d in list_districts(db) if d.code in PROFILES]
    if not districts:
        return []
    owned = False
    if monitoring_db is None:
        monitoring_db, owned = _monitoring_session(db)
    written: list[str] = []
    started = time.perf_counter()
    try:
        have = set(monitoring_db.scalars(sa.select(MonitoringRun.campaign).where(
            MonitoringRun.campaign.like("SIM-%"))))
        catalogue = load_catalogue(db)
        for district in districts:
            for year in years:
                code = campaign_code(district.code, year)
                if code in have:
                    continue
                publish(db, monitoring_db, district.code, year, district.population, catalogue,
                        ability)
                written.append(code)
                if progress is not None:
                    progress(f"simulated {code}")
        if owned:
            monitoring_db.commit()
    finally:
        if owned:
            monitoring_db.close()
    if written:
        log.warning("DEMO simulated city: %d district-years in %.1f s", len(written),
                    time.perf_counter() - started)
    return written
