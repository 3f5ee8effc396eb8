"""Demo results: closed past campaigns answered by SIMULATED residents, so that a fresh
``pserve development.ini`` shows indicators, groups and trends on ``/monitoring``.

For each of two demo districts and two rounds (autumn 2025 and autumn 2026) the loader
runs the real path a campaign takes, only the residents are simulated:

1. a campaign (its name starts with :data:`SIMULATED_MARK`, so pages and exports can say
   so) with a person frame (streets, communities, a ``learning_community`` flag for the
   learning-type communities indicator), a proportional stratified draw by street and
   invitations (:mod:`monitoring.campaigns`, :mod:`.frames`, :mod:`.draw`,
   :mod:`.invitations`);
2. residents redeem their codes through :func:`monitoring.entry.enter` (consent, test
   background prefilled from the frame), answer the adaptive ability test item by item
   through :mod:`assessment.services` with answers drawn from the IRT model at a
   simulated true ability (as :mod:`assessment.simulate` does), then answer the
   learning-needs survey page by page through :mod:`surveys.services` with plausible,
   group-dependent distributions; some never come, some stop after the test;
3. the window is moved into the past and the campaign is closed with
   :func:`monitoring.campaigns.close_campaign`, which computes the weights
   (:func:`monitoring.weighting.compute_weights`) and the aggregates
   (:func:`monitoring.aggregate.aggregate_campaign`).

Idempotent: a campaign whose name is already there is left alone (only its aggregates
are recomputed when the monitoring database lacks them). The simulated residents'
invitation codes are not kept anywhere (the campaigns are closed). Sizes: ``size``
residents drawn per campaign (``monitoring.demo_results_size`` in the .ini;
``development.ini`` sets :data:`DEFAULT_SIZE`, other settings files none; a fixed 6% never
come and 3% stop after the test, so 64 answer both), enough for the whole-campaign and
district shares to pass the NCHS standard for proportions (``docs/suppression.md``: about
60 respondents for a share near one half) while the group, age and sex cells are withheld:
pages show both. Measured (fresh SQLite, shared 2-core machine under load from other
work): first start about 68 s for the four campaigns at 36 residents each (roughly
twice that at 70), of which about 4.5 s is aggregation and most of the rest the survey
service's page handling (about 0.25 s per resident, the adaptive test about 0.1 s); the
second start adds nothing in under a second. Too slow for the 30 s goal, hence opt-in
per settings file.

With a separate monitoring database the loader commits its monitoring session itself
after aggregating (the demo hook gets only the main session); should the main
transaction then fail, the next start recreates the campaigns and the orphaned
aggregate rows (their campaign name carries the simulated mark) are left to delete.
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyramid.threadlocal import get_current_registry
from sqlalchemy.orm import Session

from assessment import services as tests
from learningcity.districts import get_district
from learningcity.people import AGE_BANDS, OLDER_BANDS
from monitoring.closing import close_campaign
from monitoring.fieldwork import draw, entry, frames, invitations
from monitoring.fieldwork.campaigns import (
    DEFAULT_SURVEY,
    create_campaign,
    known_instruments,
    update_campaign,
)
from monitoring.fieldwork.models import Campaign, Invitation
from monitoring.fieldwork.window import local_input
from monitoring.results.aggregate import aggregate_campaign
from monitoring.results.dashboard import SIMULATED_MARK
from monitoring.results.warehouse import MonitoringRun
from scoring import models as irt
from surveys import services as surveys

log = logging.getLogger(__name__)

DEMO_ACTOR = "demo"
#: residents drawn per campaign (the first start's size; tests pass a smaller one)
DEFAULT_SIZE = 70
#: the .ini setting with the size (development.ini sets DEFAULT_SIZE)
SIZE_SETTING = "monitoring.demo_results_size"
#: shares of the drawn residents who never come / stop after the ability test
NEVER_SHARE, TEST_ONLY_SHARE = 0.06, 0.03
#: (district, ability shift, training-rate shift): two demo districts that differ a little
DISTRICTS = (("D01", 0.15, 0.05), ("D02", -0.15, -0.06))
#: (round, opens, closes) in local time (Asia/Shanghai); both rounds lie in the past
ROUNDS = ((2025, "2025-10-08T09:00", "2025-11-08T18:00"),
          (2026, "2026-10-08T09:00", "2026-11-08T18:00"))
STREETS = ("S01", "S02", "S03", "S04")
#: occupations by age band (probabilities over the survey's occupation codes)
OCCUPATIONS = {
    "young": (("student", .25), ("industrial_worker", .2), ("migrant_worker", .15),
              ("service", .15), ("civil_servant", .1), ("farmer", .05),
              ("self_employed", .1)),
    "middle": (("farmer", .2), ("industrial_worker", .2), ("migrant_worker", .15),
               ("service", .15), ("civil_servant", .12), ("self_employed", .13),
               ("other", .05)),
    "older": (("retired", .6), ("farmer", .3), ("other", .1)),
}
EDUCATION = ("primary", "junior", "senior", "college")


def campaign_name(district: str, year: int) -> str:
    """The demo campaign's name: the simulated mark first, then what it is."""
    return (f"{SIMULATED_MARK} {year} 终身学习监测（模拟居民，非真实数据） "
            f"Lifelong learning monitoring {year} (simulated residents, not real data)")


# ------------------------------------------------------------------ the frame

def _frame_csv(district: str, year: int, size: int) -> bytes:
    """A person frame of about 5 x ``size`` residents in 4 streets and 12 communities."""
    rng = np.random.default_rng(year * 100 + int(district[1:]))  # reproducible frame
    per_street = max(5, (5 * size) // len(STREETS))
    lines = ["person_id,street,community,learning_community,age_band,sex,occupation,education"]
    learning = {}
    for s, street in enumerate(STREETS):
        for c in range(3):
            community = f"{street}C{c + 1}"
            # about 75% (2025) to 83% (2026) of communities are learning-type
            learning[community] = "yes" if rng.random() < (0.75 if year == 2025 else 0.83) \
                else "no"
        for i in range(per_street + 3 * s):
            band = AGE_BANDS[int(rng.choice(5, p=[.17, .24, .25, .18, .16]))]
            kind = "young" if band == "18-29" else "older" if band in OLDER_BANDS else "middle"
            names, probs = zip(*OCCUPATIONS[kind], strict=True)
            occupation = names[int(rng.choice(len(names), p=np.array(probs) / sum(probs)))]
            edu = EDUCATION[int(rng.choice(4, p=[.15, .35, .3, .2] if kind != "older"
                                           else [.45, .35, .15, .05]))]
            community = f"{street}C{1 + i % 3}"
            lines.append(f"{district}-{street}-{i:04d},{street},{community},"
                         f"{learning[community]},{band},{('female', 'male')[i % 2]},"
                         f"{occupation},{edu}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


# ------------------------------------------------------------------ a simulated resident

@dataclass
class Resident:
    """A simulated resident: true ability and the tendencies behind the survey answers."""

    theta: float
    trains: float       # probability of community training in the last 12 months
    elder_regular: float
    motivation: float   # latent, ~N(0, 1), correlated with ability
    rng: np.random.Generator


def _resident(prefill: dict[str, Any], year: int, shift: float, train_shift: float,
              rng: np.random.Generator) -> Resident:
    band = prefill.get("age_band", "30-44")
    older = band in OLDER_BANDS
    edu = EDUCATION.index(prefill.get("education", "junior")) \
        if prefill.get("education") in EDUCATION else 1
    theta = rng.normal(shift + 0.25 * (edu - 1.5) - (0.35 if older else 0.0)
                       + (0.12 if year == 2026 else 0.0), 0.9)
    trains = min(0.95, max(0.05, 0.52 + train_shift + (0.05 if year == 2026 else 0.0)
                           - (0.12 if older else 0.0) + 0.04 * (edu - 1.5)))
    elder_regular = 0.22 + (0.08 if year == 2026 else 0.0) + train_shift
    motivation = 0.5 * theta + rng.normal(0, 0.85)
    return Resident(theta=float(theta), trains=trains, elder_regular=elder_regular,
                    motivation=float(motivation), rng=rng)


def _take_test(db: Session, session: Any, person: Resident, max_items: int = 120) -> None:
    """Answer the adaptive test through assessment.services, each answer drawn from the
    IRT model at the resident's true ability (as assessment.simulate does)."""
    live = tests.live_bank(db, session.calibration_id)
    probs = irt.probabilities(live.params, np.array([person.theta]))[0]
    step = tests.current_step(db, session)
    for _ in range(max_items):
        if step.status != "testing":
            return
        item = step.item
        j = live.index_of[item["version"]]
        p = np.asarray(probs[j], dtype=float)
        p = np.clip(np.nan_to_num(p), 0, None)
        category = int(person.rng.choice(len(p), p=p / p.sum()))
        content = live.content(db, item["version"])
        k = len(content.options)
        if content.key is not None:  # right (category 1) or one of the wrong options
            wrong = [c for c in range(1, k + 1) if c != content.key]
            choice = content.key if category >= 1 else int(person.rng.choice(wrong))
        else:
            category = min(category, k - 1)
            choice = (k - category) if content.reverse else category + 1
        step = tests.submit_answer(db, session, position=item["position"],
                                   version_id=item["version"], choice=choice,
                                   response_ms=int(person.rng.integers(4000, 40000)))
    raise RuntimeError("simulated test did not finish")


def _pick(rng: np.random.Generator, options: list[str], weights: list[float]) -> str:
    w = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def _several(rng: np.random.Generator, options: list[str], weights: dict[str, float],
             at_most: int) -> list[str]:
    """Each option with its probability (at most ``at_most``; at least one)."""
    chosen = [o for o in options if rng.random() < weights.get(o, 0.2)]
    if len(chosen) > at_most:
        chosen = [str(x) for x in rng.choice(chosen, size=at_most, replace=False)]
    return chosen or [_pick(rng, options, [weights.get(o, 0.2) + 1e-3 for o in options])]


TOPIC_P = {"health": .45, "smart_devices": .35, "vocational": .3, "arts": .25, "finance": .2,
           "science": .15, "heritage": .15, "smart_manufacturing": .1,
           "industrial_internet": .08}
CHANNEL_P = {"community_school": .45, "online": .45, "elderly_university": .15,
             "workplace": .25, "library": .2, "village": .15, "tv_radio": .15}
BARRIER_P = {"no_time": .45, "no_info": .3, "distance": .15, "cost": .15, "health": .1,
             "no_course": .15, "family": .2, "no_interest": .1}
TIME_P = {"weekday_evening": .4, "weekend": .5, "weekday_day": .2, "holiday": .15,
          "anytime": .1}


def _answer(q: Any, survey: Any, person: Resident, answers: dict[str, Any],
            year: int) -> dict[str, Any]:
    """Plausible answers to one question (only choices that need no free text)."""
    rng = person.rng
    older = answers.get("age_band") in OLDER_BANDS
    options = [c.name for c in survey.choice_lists.get(q.choices or "", ())
               if c.name not in ("other",)]
    name, kind = q.name, q.type
    if name == "community_training":
        return {name: "yes" if rng.random() < person.trains else "no"}
    if name == "training_times":
        return {name: int(min(q.maximum or 50, max(q.minimum or 1, rng.poisson(4) + 1)))}
    if name == "training_last":
        return {name: f"{year}-{int(rng.integers(1, 10)):02d}"}
    if name == "elder_education":
        r = rng.random()
        return {name: "regular" if r < person.elder_regular else
                "sometimes" if r < person.elder_regular + 0.3 else "never"}
    if kind == "single_choice":
        return {name: _pick(rng, options, [1.0] * len(options))}
    if kind == "multiple_choice":
        if name == "topics":
            w = dict(TOPIC_P, health=.6 if older else .35, vocational=.1 if older else .4)
            return {name: _several(rng, options, w, 3)}
        if name == "channels":
            w = dict(CHANNEL_P, elderly_university=.4 if older else .05,
                     online=.2 if older else .55, workplace=.02 if older else .3)
            return {name: _several(rng, options, w, 8)}
        if name == "barriers":
            if rng.random() < 0.12:
                return {name: ["none"]}
            w = dict(BARRIER_P, health=.3 if older else .05, no_time=.15 if older else .55)
            return {name: _several(rng, [o for o in options if o != "none"], w, 8)}
        return {name: _several(rng, options, TIME_P, 8)}
    if kind == "rating_grid":
        out = {}
        for item in q.items:
            latent = person.motivation if name != "satisfaction" else 0.8
            value = 3 + latent + rng.normal(0, 0.9)
            if getattr(item, "reverse", False):
                value = 6 - value
            out[item.name] = str(int(min(5, max(1, round(value)))))
        return out
    if kind in ("integer", "decimal"):
        return {name: int(q.minimum or 0)}
    return {}


def _take_survey(db: Session, session: Any, person: Resident, year: int,
                 max_pages: int = 30) -> None:
    """Answer the survey page by page through surveys.services, then finish it."""
    state = surveys.current_page(db, session)
    for _ in range(max_pages):
        if state.status != "started" or state.page is None:
            break
        answers: dict[str, Any] = {}
        known = dict(state.answers)
        for q in state.questions:
            if q.type == "note":
                continue
            if known.get(q.name) not in (None, "", []):
                answers[q.name] = known[q.name]  # prefilled: sent again as it is
                continue
            given = _answer(q, state.survey, person, {**known, **answers}, year)
            answers.update(given)
        step = state.step  # the page, or the repeat instance ``page[i]``
        state = surveys.save_page(db, session, step, answers, state.revision)
        if state.page is not None and state.step == step:
            more = [q for q in state.questions if q.type != "note"
                    and q.name not in answers and not any(
                        k.startswith(q.name) for k in answers)]
            if not more:
                break
            # questions newly shown by these answers (e.g. follow-ups): next pass
    surveys.finish(db, session)


# ------------------------------------------------------------------ one campaign

def _simulate_campaign(db: Session, mdb: Session, district: str, shift: float,
                       train_shift: float, year: int, opens: str, closes: str,
                       size: int, test: str | None) -> Campaign:
    now = dt.datetime.now(dt.UTC)
    campaign = create_campaign(
        db, district_code=district, user=DEMO_ACTOR, name=campaign_name(district, year),
        test_instrument=test, survey_code=DEFAULT_SURVEY, mode="sample",
        opens_at=local_input(now - dt.timedelta(minutes=5)),
        closes_at=local_input(now + dt.timedelta(hours=6)))
    spec = frames.FrameSpec("unit", "person_id", ["street"])
    frames.import_frame(db, campaign, f"simulated_frame_{district}_{year}.csv",
                        _frame_csv(district, year, size), spec, DEMO_ACTOR)
    draw.set_design(db, campaign, DEMO_ACTOR, n=size, allocation="proportional",
                    min_per_stratum=2)
    seed = 7_000_000 + year * 10 + int(district[1:])
    draw.draw_sample(db, campaign, DEMO_ACTOR, seed=seed)
    # codes and session tokens of simulated residents: hashed with a throw-away key, never
    # shown (the campaigns are closed right after)
    secret = secrets.token_hex(16)
    issued = invitations.issue_invitations(db, campaign, DEMO_ACTOR, secret=secret)
    rng = np.random.default_rng(seed)
    # fixed numbers (not chance) of residents who never come or stop after the test, so
    # every campaign keeps enough full respondents for its whole-population cells
    order = [int(k) for k in rng.permutation(len(issued))]
    n_never = max(1, round(NEVER_SHARE * len(issued)))
    n_test_only = max(1, round(TEST_ONLY_SHARE * len(issued)))
    never, test_only = set(order[:n_never]), set(order[n_never:n_never + n_test_only])
    for k, inv in enumerate(issued):
        invitation = _invitation(db, inv)
        if k in never:
            continue
        person = _resident(dict(invitation.prefill or {}), year, shift, train_shift, rng)
        state = entry.enter(db, invitation, inv.code, secret, consent=True)
        if state.test_session is not None:
            session = tests.find_session(db, state.test_token)
            if session.status == "background":
                tests.set_background(db, session,
                                     {"education": "junior", **(session.background or {})})
            _take_test(db, session, person)
            if k in test_only:
                continue
            state = entry.enter(db, invitation, inv.code, secret)
        if state.survey_session is not None:
            _take_survey(db, surveys.find_survey_session(db, state.survey_token), person, year)
        entry.refresh_status(db, invitation, campaign)
    db.flush()
    # the window as it was (in the past), then the close computes weights and aggregates
    update_campaign(db, campaign, user=DEMO_ACTOR, opens_at=opens, closes_at=closes)
    outcome = close_campaign(db, campaign, DEMO_ACTOR, monitoring_db=mdb)
    if outcome.steps.get("aggregates") != "ok":
        log.error("simulated campaign %s closed but not aggregated: %s", campaign.code,
                  outcome.steps)
    return campaign


def _invitation(db: Session, issued: Any) -> Any:
    return db.scalar(sa.select(Invitation).where(Invitation.public_id == issued.public_id))


def _monitoring_session(db: Session) -> tuple[Session, bool]:
    """The session aggregates go to: ``db`` itself when the monitoring database is the
    main one (the default), else a new session of the app's monitoring factory (owned)."""
    factory = getattr(get_current_registry(), "monitoring_session_factory", None)
    if factory is None:
        return db, False
    mdb = factory()
    same = mdb.get_bind().url.render_as_string(hide_password=False) == \
        db.get_bind().url.render_as_string(hide_password=False)
    if same:
        mdb.close()
        return db, False
    return mdb, True


def configured_size() -> int:
    """Residents per campaign from the app's setting :data:`SIZE_SETTING` (0 when absent:
    only ``development.ini`` asks for simulated results, so other apps, production and
    the test suite's app starts get none)."""
    settings = getattr(get_current_registry(), "settings", None) or {}
    raw = str(settings.get(SIZE_SETTING, "") or "0").strip()
    try:
        size = int(raw)
    except ValueError:
        raise ValueError(f"setting {SIZE_SETTING} must be a whole number, not {raw!r}"
                         ) from None
    if size < 0:
        raise ValueError(f"setting {SIZE_SETTING} must not be negative")
    return size


def load(db: Session, monitoring_db: Session | None = None, *, size: int | None = None,
         districts: tuple[tuple[str, float, float], ...] = DISTRICTS,
         progress: Callable[[str], None] | None = None) -> list[str]:
    """Create the simulated closed campaigns that are missing; returns their codes.

    ``size``: residents drawn per campaign (default: the app's setting, see
    :func:`configured_size`; 0 creates nothing). ``monitoring_db`` defaults to the
    app's monitoring session (see :func:`_monitoring_session`); tests pass their own.
    """
    if size is None:
        size = configured_size()
    if size <= 0:
        return []
    if "LLA" not in known_instruments(db) or get_district(db, districts[0][0]) is None:
        return []  # no demo item bank or districts: nothing to simulate
    owned = False
    if monitoring_db is None:
        monitoring_db, owned = _monitoring_session(db)
    created: list[str] = []
    try:
        for district, shift, train_shift in districts:
            if get_district(db, district) is None:
                continue
            for year, opens, closes in ROUNDS:
                name = campaign_name(district, year)
                existing = db.scalar(sa.select(Campaign).where(
                    Campaign.name == name, Campaign.district_code == district))
                if existing is not None:
                    aggregated = monitoring_db.scalar(sa.select(MonitoringRun.id).where(
                        MonitoringRun.campaign == existing.code))
                    if existing.status == "closed" and aggregated is None:
                        aggregate_campaign(db, monitoring_db, existing.code, actor=DEMO_ACTOR)
                    continue
                started = time.perf_counter()
                campaign = _simulate_campaign(db, monitoring_db, district, shift, train_shift,
                                              year, opens, closes, size, "LLA")
                created.append(campaign.code)
                msg = (f"simulated campaign {campaign.code} ({district} {year}) in "
                       f"{time.perf_counter() - started:.1f} s")
                log.warning("DEMO %s", msg)
                if progress is not None:
                    progress(msg)
        if owned:
            monitoring_db.commit()
    finally:
        if owned:
            monitoring_db.close()
    return created
