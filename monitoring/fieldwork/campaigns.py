"""Campaigns: create, edit, list (district-scoped).

A campaign moves draft -> ready (sample drawn) -> closed. A drawn campaign keeps its
design, instruments and mode; a closed one accepts nothing at all. The response window
is in :mod:`monitoring.fieldwork.window`; closing (freeze, weights, aggregates) in
:mod:`monitoring.closing`.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from itembank.services import instrument_codes
from learningcity import audit
from learningcity.db import utcnow
from learningcity.districts import get_district
from learningcity.filemessages import file_problem_text
from learningcity.i18n import _
from monitoring.fieldwork.inserts import insert_new
from monitoring.fieldwork.models import CAMPAIGN_MODES, Campaign
from monitoring.fieldwork.window import TIMEZONE, parse_local, to_local
from surveys.services import published_codes

log = logging.getLogger(__name__)

DEFAULT_SURVEY = "learning_needs"
NAME_MAX = 200


class Said(str):
    """A service's message: English with its values filled in (what exceptions, logs and
    the command line show), carrying its translation string with the mapping
    (:attr:`translation`) so the pages show it in the reader's language."""

    translation: Any

    def __new__(cls, message: Any, **mapping: Any) -> Said:
        translation = _(message, mapping=mapping or None)
        said = super().__new__(cls, translation.interpolate())
        said.translation = translation
        return said


def shown(problem: Any, translate: Any) -> str:
    """A problem as a page shows it: a :class:`Said` translated with ``translate``, a
    file's problem (tabular's, or one of ours with a :class:`Said` message) as
    :func:`learningcity.filemessages.file_problem_text` says it, anything else as text."""
    if isinstance(problem, Said):
        return translate(problem.translation)
    if hasattr(problem, "row") and hasattr(problem, "message"):  # tabular's Problem
        return file_problem_text(problem, translate)
    return str(problem)


class CampaignError(ValueError):
    """A campaign request that cannot be carried out; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message if not problems else "; ".join(self.problems))


# ------------------------------------------------------------------ queries

def get_campaign(db: Session, code: str) -> Campaign | None:
    return db.scalar(sa.select(Campaign).where(Campaign.code == code))


def visible_campaigns(db: Session, user: Any) -> list[Campaign]:
    """Campaigns the user may see: own district for district staff, all for admin/monitor."""
    query = sa.select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
    if user is None or user.role not in ("admin", "monitor", "district"):
        return []
    if user.role == "district":
        query = query.where(Campaign.district_code == user.district_code)
    return list(db.scalars(query))


def known_instruments(db: Session) -> list[str]:
    """Ability-test instruments with a published calibration (item bank)."""
    return instrument_codes(db, kind="ability", published_only=True)


def known_surveys(db: Session) -> list[str]:
    """Survey codes residents can be given: published surveys and the default one."""
    return sorted({DEFAULT_SURVEY, *published_codes(db)})


# ------------------------------------------------------------------ create and edit

def next_code(db: Session, district_code: str, when: dt.datetime | None = None) -> str:
    """``<district>-<yyyymm>-<n>``, n counting that district's campaigns of the month."""
    local = to_local(when or utcnow())
    prefix = f"{district_code}-{local:%Y%m}-"
    taken = set(db.scalars(sa.select(Campaign.code).where(Campaign.code.like(prefix + "%"))))
    n = len(taken) + 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


#: attempts at a free campaign code before giving up (each sees the codes taken meanwhile)
CODE_ATTEMPTS = 20


def _insert_campaign(db: Session, district_code: str, user: str, clean: dict[str, Any]
                     ) -> Campaign:
    """Insert the campaign under the next free code. Simultaneous "new campaign" posts
    compute the same code; the database keeps the first (``ON CONFLICT DO NOTHING`` on
    the unique code) and the others try the next code, so none fails."""
    for _attempt in range(CODE_ATTEMPTS):
        row = {"code": next_code(db, district_code), "district_code": district_code,
               "created_by": user, "status": "draft", "design": {}, "seed": None,
               "created_at": utcnow(), "revision": 0, **clean}
        inserted = insert_new(db, Campaign, [row], key=("code",), returning=[Campaign.id])
        if inserted:
            return db.get(Campaign, inserted[0].id)
    raise CampaignError(Said(_("no free campaign code for district ${code}: try again"),
                             code=district_code))


def _check_fields(db: Session, values: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Validate name, instruments, mode and window; collect every problem."""
    clean: dict[str, Any] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        problems.append(Said(_("name: required")))
    elif len(name) > NAME_MAX:
        problems.append(Said(_("name: at most ${n} characters"), n=NAME_MAX))
    clean["name"] = name
    test = str(values.get("test_instrument") or "").strip() or None
    survey = str(values.get("survey_code") or "").strip() or None
    if test is not None and test not in known_instruments(db):
        problems.append(Said(_("test_instrument: ${code} is not a published ability test"),
                             code=repr(test)))
    if survey is not None and survey not in known_surveys(db):
        problems.append(Said(_("survey_code: unknown survey ${code}"), code=repr(survey)))
    if test is None and survey is None:
        problems.append(Said(_("instruments: choose an ability test, a survey, or both")))
    clean["test_instrument"], clean["survey_code"] = test, survey
    mode = str(values.get("mode") or "sample")
    if mode not in CAMPAIGN_MODES:
        problems.append(Said(_("mode: ${mode} is not one of ${modes}"), mode=repr(mode),
                             modes=", ".join(CAMPAIGN_MODES)))
    clean["mode"] = mode
    tz = str(values.get("timezone") or TIMEZONE)
    for key in ("opens_at", "closes_at"):
        raw = values.get(key)
        if raw in (None, ""):
            problems.append(Said(_("${field}: required"), field=key))
            continue
        try:
            clean[key] = parse_local(raw, tz)
        except ValueError:
            problems.append(Said(_("${field}: ${value} is not a date and time like "
                                   "2027-03-01 09:00"), field=key,
                                 value=repr(str(raw).strip())))
    if "opens_at" in clean and "closes_at" in clean and clean["closes_at"] <= clean["opens_at"]:
        problems.append(Said(_("closes_at: the window must close after it opens")))
    clean["timezone"] = tz
    return clean


def create_campaign(db: Session, *, district_code: str, user: str, **values: Any) -> Campaign:
    """A new draft campaign. ``values``: name, test_instrument, survey_code, mode,
    opens_at, closes_at (local date-times in Asia/Shanghai, or aware datetimes)."""
    problems: list[str] = []
    if get_district(db, district_code) is None:
        problems.append(Said(_("district: unknown district ${code}"), code=repr(district_code)))
    clean = _check_fields(db, values, problems)
    if problems:
        raise CampaignError("the campaign was not saved", problems)
    campaign = _insert_campaign(db, district_code, user, clean)
    audit.record(db, actor=user, action="campaign.create", target=campaign.code,
                     detail={"district": district_code, "name": clean["name"]})
    return campaign


def update_campaign(db: Session, campaign: Campaign, *, user: str, **values: Any) -> Campaign:
    """Change name, instruments, mode or window. After the draw only name and window may
    change; a closed campaign changes no more."""
    if campaign.status == "closed":
        raise CampaignError(Said(_("campaign ${code} is closed and cannot be edited"),
                                 code=campaign.code))
    problems: list[str] = []
    merged = {"name": campaign.name, "test_instrument": campaign.test_instrument,
              "survey_code": campaign.survey_code, "mode": campaign.mode,
              "opens_at": campaign.opens_at, "closes_at": campaign.closes_at,
              "timezone": campaign.timezone, **values}
    clean = _check_fields(db, merged, problems)
    if campaign.status != "draft":
        for key in ("test_instrument", "survey_code", "mode"):
            if clean.get(key) != getattr(campaign, key):
                problems.append(Said(_("${field}: cannot change after the sample was drawn"),
                                     field=key))
    if problems:
        raise CampaignError("the campaign was not saved", problems)
    changed = {k: v for k, v in clean.items() if getattr(campaign, k) != v}
    for key, value in changed.items():
        setattr(campaign, key, value)
    if changed:
        audit.record(db, actor=user, action="campaign.edit", target=campaign.code,
                         detail={k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                                 for k, v in changed.items()})
    db.flush()
    return campaign
