"""Campaigns: create, edit, list (district-scoped), the response window, closing.

Times are entered and shown in the campaign's time zone (Asia/Shanghai) and stored in
UTC. A campaign moves draft -> ready (sample drawn) -> closed. A drawn campaign keeps its
design, instruments and mode; a closed one accepts nothing at all. Closing calls the
weighting and aggregation steps of other modules when they are installed.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.db import utcnow
from learningcity.models import AuditEvent, District, StaffUser

from .models import CAMPAIGN_MODES, Campaign

log = logging.getLogger(__name__)

TIMEZONE = "Asia/Shanghai"
DEFAULT_SURVEY = "learning_needs"
NAME_MAX = 200
_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                  "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


class CampaignError(ValueError):
    """A campaign request that cannot be carried out; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message if not problems else "; ".join(self.problems))


# ------------------------------------------------------------------ time

def parse_local(value: str | dt.datetime, tz: str = TIMEZONE) -> dt.datetime:
    """A local date-time (``2027-03-01T09:00`` or ``2027-03-01 09:00``) as aware UTC."""
    if isinstance(value, dt.datetime):
        local = value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))
        return local.astimezone(dt.UTC)
    text = str(value).strip()
    for fmt in _LOCAL_FORMATS:
        try:
            naive = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
    raise ValueError(f"{text!r} is not a date and time like 2027-03-01 09:00")


def to_local(moment: dt.datetime | None, tz: str = TIMEZONE) -> dt.datetime | None:
    """A stored UTC time in the campaign's time zone."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(ZoneInfo(tz))


def local_text(moment: dt.datetime | None, tz: str = TIMEZONE) -> str:
    """``2027-03-01 09:00`` in the campaign's zone (empty for None)."""
    local = to_local(moment, tz)
    return local.strftime("%Y-%m-%d %H:%M") if local else ""


def local_input(moment: dt.datetime | None, tz: str = TIMEZONE) -> str:
    """The value for an ``<input type=datetime-local>``."""
    local = to_local(moment, tz)
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


def window_state(campaign: Campaign, now: dt.datetime | None = None) -> str:
    """``not_yet_open``, ``open`` or ``ended`` for the response window."""
    now = now or utcnow()
    if now < _aware(campaign.opens_at):
        return "not_yet_open"
    if now >= _aware(campaign.closes_at):
        return "ended"
    return "open"


def accepting_responses(campaign: Campaign, now: dt.datetime | None = None) -> bool:
    """Whether residents may answer now: drawn (or open mode ready), not closed, in window."""
    return campaign.status == "ready" and window_state(campaign, now) == "open"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# ------------------------------------------------------------------ queries

def get_campaign(db: Session, code: str) -> Campaign | None:
    return db.scalar(sa.select(Campaign).where(Campaign.code == code))


def visible_campaigns(db: Session, user: StaffUser | None) -> list[Campaign]:
    """Campaigns the user may see: own district for district staff, all for admin/monitor."""
    query = sa.select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
    if user is None or user.role not in ("admin", "monitor", "district"):
        return []
    if user.role == "district":
        query = query.where(Campaign.district_code == user.district_code)
    return list(db.scalars(query))


def known_instruments(db: Session) -> list[str]:
    """Ability-test instruments with a published calibration (item bank)."""
    from itembank.models import Instrument

    return list(db.scalars(sa.select(Instrument.code).where(
        Instrument.kind == "ability", Instrument.published_calibration_id.is_not(None))
        .order_by(Instrument.code)))


def known_surveys(db: Session) -> list[str]:
    """Survey codes residents can be given: published surveys and the default one."""
    codes = {DEFAULT_SURVEY}
    try:
        from surveys.models import SurveyPublication

        codes.update(db.scalars(sa.select(SurveyPublication.code)))
    except (ImportError, sa.exc.SQLAlchemyError):  # surveys not installed or not migrated
        pass
    return sorted(codes)


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


def _check_fields(db: Session, values: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Validate name, instruments, mode and window; collect every problem."""
    clean: dict[str, Any] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        problems.append("name: required")
    elif len(name) > NAME_MAX:
        problems.append(f"name: at most {NAME_MAX} characters")
    clean["name"] = name
    test = str(values.get("test_instrument") or "").strip() or None
    survey = str(values.get("survey_code") or "").strip() or None
    if test is not None and test not in known_instruments(db):
        problems.append(f"test_instrument: {test!r} is not a published ability test")
    if survey is not None and survey not in known_surveys(db):
        problems.append(f"survey_code: unknown survey {survey!r}")
    if test is None and survey is None:
        problems.append("instruments: choose an ability test, a survey, or both")
    clean["test_instrument"], clean["survey_code"] = test, survey
    mode = str(values.get("mode") or "sample")
    if mode not in CAMPAIGN_MODES:
        problems.append(f"mode: {mode!r} is not one of {', '.join(CAMPAIGN_MODES)}")
    clean["mode"] = mode
    tz = str(values.get("timezone") or TIMEZONE)
    for key in ("opens_at", "closes_at"):
        raw = values.get(key)
        if raw in (None, ""):
            problems.append(f"{key}: required")
            continue
        try:
            clean[key] = parse_local(raw, tz)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    if "opens_at" in clean and "closes_at" in clean and clean["closes_at"] <= clean["opens_at"]:
        problems.append("closes_at: the window must close after it opens")
    clean["timezone"] = tz
    return clean


def create_campaign(db: Session, *, district_code: str, user: str, **values: Any) -> Campaign:
    """A new draft campaign. ``values``: name, test_instrument, survey_code, mode,
    opens_at, closes_at (local date-times in Asia/Shanghai, or aware datetimes)."""
    problems: list[str] = []
    if db.get(District, district_code) is None:
        problems.append(f"district: unknown district {district_code!r}")
    clean = _check_fields(db, values, problems)
    if problems:
        raise CampaignError("the campaign was not saved", problems)
    campaign = Campaign(code=next_code(db, district_code), district_code=district_code,
                        created_by=user, status="draft", design={}, **clean)
    db.add(campaign)
    db.flush()
    db.add(AuditEvent(actor=user, action="campaign.create", target=campaign.code,
                      detail={"district": district_code, "name": clean["name"]}))
    return campaign


def update_campaign(db: Session, campaign: Campaign, *, user: str, **values: Any) -> Campaign:
    """Change name, instruments, mode or window. After the draw only name and window may
    change; a closed campaign changes no more."""
    if campaign.status == "closed":
        raise CampaignError(f"campaign {campaign.code} is closed and cannot be edited")
    problems: list[str] = []
    merged = {"name": campaign.name, "test_instrument": campaign.test_instrument,
              "survey_code": campaign.survey_code, "mode": campaign.mode,
              "opens_at": campaign.opens_at, "closes_at": campaign.closes_at,
              "timezone": campaign.timezone, **values}
    clean = _check_fields(db, merged, problems)
    if campaign.status != "draft":
        for key in ("test_instrument", "survey_code", "mode"):
            if clean.get(key) != getattr(campaign, key):
                problems.append(f"{key}: cannot change after the sample was drawn")
    if problems:
        raise CampaignError("the campaign was not saved", problems)
    changed = {k: v for k, v in clean.items() if getattr(campaign, k) != v}
    for key, value in changed.items():
        setattr(campaign, key, value)
    if changed:
        db.add(AuditEvent(actor=user, action="campaign.edit", target=campaign.code,
                          detail={k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                                  for k, v in changed.items()}))
    db.flush()
    return campaign


# ------------------------------------------------------------------ close

@dataclass
class CloseOutcome:
    """What closing did: the hook results, in order (``ok``, ``skipped`` or an error)."""

    campaign: str
    steps: dict[str, str] = field(default_factory=dict)


def _hook(db: Session, name: str, call: Any, outcome: CloseOutcome) -> None:
    """Run another module's step in a savepoint: its failure never undoes the close."""
    try:
        with db.begin_nested():
            call()
        outcome.steps[name] = "ok"
    except ImportError:
        outcome.steps[name] = "skipped: module not installed"
    except Exception as exc:  # reported to the user; the close stands
        log.warning("close %s: %s failed: %s", outcome.campaign, name, exc)
        outcome.steps[name] = f"error: {exc}"


def close_campaign(db: Session, campaign: Campaign, user: str,
                   monitoring_db: Session | None = None) -> CloseOutcome:
    """Freeze the campaign (no edits, draws, invitations or answers), then compute its
    weights (``monitoring.weighting.compute_weights``) and aggregates
    (``monitoring.aggregate.aggregate_campaign``) when those modules exist."""
    if campaign.status == "closed":
        raise CampaignError(f"campaign {campaign.code} is already closed")
    campaign.status = "closed"
    campaign.closed_at = utcnow()
    campaign.closed_by = user
    db.add(AuditEvent(actor=user, action="campaign.close", target=campaign.code, detail={}))
    db.flush()
    outcome = CloseOutcome(campaign=campaign.code)

    def weights() -> None:
        from monitoring.weighting import compute_weights

        compute_weights(db, campaign, user)

    def aggregates() -> None:
        from monitoring.aggregate import aggregate_campaign

        if monitoring_db is None:
            raise RuntimeError("no monitoring database session")
        aggregate_campaign(db, monitoring_db, campaign.code)

    _hook(db, "weights", weights, outcome)
    if outcome.steps["weights"] == "ok":
        _hook(db, "aggregates", aggregates, outcome)
    else:
        outcome.steps["aggregates"] = "skipped: no weights"
    db.add(AuditEvent(actor=user, action="campaign.close_steps", target=campaign.code,
                      detail=dict(outcome.steps)))
    db.flush()
    return outcome
