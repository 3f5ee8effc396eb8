"""Demo campaign: one drawn campaign in the first demo district, window open for 30 days.

Invitation codes are shown only once, so the loader writes the demo campaign's codes to
``var/demo_invitations.csv`` beside the SQLite database (or the working directory for
other databases), readable by the owner only (0600), and logs three of them; the
campaign page says where the file is. The codes are hashed with the app secret, which
the loader gets as an argument or, when run at start-up, from the app's settings.
Loading is idempotent: an existing demo campaign is left alone.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.db import utcnow
from learningcity.districts import get_district
from learningcity.people import AGE_BANDS
from monitoring.fieldwork import draw, frames, invitations
from monitoring.fieldwork.campaigns import DEFAULT_SURVEY, create_campaign, known_instruments
from monitoring.fieldwork.models import Campaign
from monitoring.fieldwork.window import local_input

log = logging.getLogger(__name__)

DEMO_CAMPAIGN_NAME = "演示抽样调查 Demo sampling campaign"
DEMO_DISTRICT = "D01"
DEMO_ACTOR = "demo"
DEMO_SEED = 20261129
DEMO_N = 40
DEMO_FILE = Path("var") / "demo_invitations.csv"
DEMO_BASE_URL = "http://localhost:6543"
STREETS = (("S01", "东湖街道"), ("S02", "湖滨街道"), ("S03", "新村街道"), ("S04", "滨江街道"))
#: the age bands and sex codes of the test and the learning-needs survey, so prefill fits


def _frame_csv() -> bytes:
    """A small person frame: 4 streets x 5 age bands, 6 to 19 residents per cell."""
    lines = ["person_id,street,street_name,age_band,sex"]
    for s, (street, name) in enumerate(STREETS):
        for b, band in enumerate(AGE_BANDS):
            for i in range(6 + 2 * s + 2 * b):
                lines.append(f"{street}-{b}{i:02d},{street},{name},{band},"
                             f"{'female' if (i + s) % 2 else 'male'}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def demo_file(db: Session) -> Path:
    """Where the demo codes go: ``var/`` beside the SQLite file, else the working dir."""
    url = db.get_bind().url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / DEMO_FILE
    return Path.cwd() / DEMO_FILE


def demo_codes_note(db: Session) -> str | None:
    """The demo codes file, when it exists (shown on the demo campaign's page)."""
    path = demo_file(db)
    return str(path) if path.exists() else None


def _startup_secret() -> str:
    """The app secret of the application being configured (loaders run at start-up, inside
    the Configurator, whose registry is the current one)."""
    from pyramid.threadlocal import get_current_registry  # start-up: only the loader needs it

    settings: Any = get_current_registry().settings or {}
    secret = settings.get("learningcity.secret") or ""
    if not secret:
        raise ValueError("demo campaign: no app secret to hash the invitation codes with")
    return secret


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable and writable by the owner only (0600), also when
    the file existed with wider permissions: it holds working invitation codes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def load(db: Session, *, secret: str | None = None) -> None:
    """Create, draw and invite the demo campaign once (codes hashed with ``secret``, by
    default the starting app's ``learningcity.secret``)."""
    if get_district(db, DEMO_DISTRICT) is None:
        return
    exists = db.scalar(sa.select(Campaign.id).where(Campaign.name == DEMO_CAMPAIGN_NAME))
    if exists is not None:
        return
    now = utcnow()
    test = "LLA" if "LLA" in known_instruments(db) else None
    campaign = create_campaign(
        db, district_code=DEMO_DISTRICT, user=DEMO_ACTOR, name=DEMO_CAMPAIGN_NAME,
        test_instrument=test, survey_code=DEFAULT_SURVEY, mode="sample",
        opens_at=local_input(now - dt.timedelta(minutes=1)),
        closes_at=local_input(now + dt.timedelta(days=30)))
    spec = frames.FrameSpec("unit", "person_id", ["street", "age_band"])
    frames.import_frame(db, campaign, "demo_frame.csv", _frame_csv(), spec, DEMO_ACTOR)
    draw.set_design(db, campaign, DEMO_ACTOR, n=DEMO_N, allocation="proportional",
                    min_per_stratum=1)
    draw.draw_sample(db, campaign, DEMO_ACTOR, seed=DEMO_SEED)
    issued = invitations.issue_invitations(db, campaign, DEMO_ACTOR,
                                           secret=secret or _startup_secret())
    path = demo_file(db)
    try:
        write_private(path, invitations.invitations_csv(issued, DEMO_BASE_URL))
    except OSError as exc:  # a read-only checkout: the demo works, the codes are logged
        log.warning("demo invitation codes not written to %s: %s", path, exc)
    log.warning("DEMO campaign %s: invitation codes written to %s; e.g. %s", campaign.code,
                path, ", ".join(i.code for i in issued[:3]))
