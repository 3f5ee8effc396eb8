"""The response window of a campaign: local times (Asia/Shanghai) in and out, and its state.

Times are entered and shown in the campaign's time zone and stored in UTC.
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from learningcity.db import utcnow

TIMEZONE = "Asia/Shanghai"
_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                  "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


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


def window_state(campaign: Any, now: dt.datetime | None = None) -> str:
    """``not_yet_open``, ``open`` or ``ended`` for the response window."""
    now = now or utcnow()
    if now < _aware(campaign.opens_at):
        return "not_yet_open"
    if now >= _aware(campaign.closes_at):
        return "ended"
    return "open"


def response_state(campaign: Any, now: dt.datetime | None = None) -> str:
    """What residents can do, for the badges: ``not_drawn`` (a draft: nobody can answer
    whatever the dates), ``not_yet_open``, ``open``, ``ended`` (the window passed),
    ``closed`` (closed after its window) or ``closed_early`` (closed before it ended)."""
    if campaign.status == "draft":
        return "not_drawn"
    if campaign.status == "closed":
        closed = campaign.closed_at
        if closed is not None and _aware(closed) < _aware(campaign.closes_at):
            return "closed_early"
        return "closed"
    return window_state(campaign, now)


def answering_ended_at(campaign: Any) -> dt.datetime:
    """When answering stopped or stops: the close when a campaign was closed before its
    window ended, else the end of the window (what a resident is told)."""
    closed = campaign.closed_at if campaign.status == "closed" else None
    if closed is not None and _aware(closed) < _aware(campaign.closes_at):
        return _aware(closed)
    return _aware(campaign.closes_at)


def accepting_responses(campaign: Any, now: dt.datetime | None = None) -> bool:
    """Whether residents may answer now: drawn (or open mode ready), not closed, in window."""
    return campaign.status == "ready" and window_state(campaign, now) == "open"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
