"""The demo loader (idempotent, every row simulated) and the provider's entry point."""
from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from learningcity import demo
from monitoring.organisations import demo_content, recognition
from monitoring.organisations.models import Evaluation, Organisation


def test_the_demo_loader_is_idempotent_and_labelled(dbsession: Any) -> None:
    demo.load(dbsession)
    demo_content.load(dbsession)
    dbsession.commit()
    counts = recognition.learning_community_counts(dbsession, demo_content.DEMO_YEAR)
    assert len(counts) == 12 and all(n == 5 for _r, n in counts.values())
    assert all(r <= 4 for r, _n in counts.values()) and sum(r for r, _n in counts.values())
    organisations = dbsession.scalar(sa.select(sa.func.count(Organisation.id)))
    assert organisations == 12 * 8
    assert dbsession.scalar(sa.select(sa.func.count(Organisation.id)).where(
        Organisation.simulated.is_(False))) == 0
    assert dbsession.scalar(sa.select(sa.func.count(Evaluation.id)).where(
        Evaluation.simulated.is_(False))) == 0
    demo_content.load(dbsession)
    dbsession.commit()
    assert dbsession.scalar(sa.select(sa.func.count(Organisation.id))) == organisations
    assert recognition.learning_community_counts(dbsession, 2025) == counts


def test_the_provider_is_declared_for_the_indicator_system() -> None:
    parser = configparser.ConfigParser()
    parser.read(Path(__file__).resolve().parents[3] / "setup.cfg", encoding="utf-8")
    group = parser.get("options.entry_points", "learningcity.indicator_sources")
    declared = dict(line.split(" = ") for line in group.strip().splitlines())
    assert declared["organisations"] == \
        "monitoring.organisations.recognition:learning_community_indicator"
    demos = parser.get("options.entry_points", "learningcity.demo")
    assert "monitoring.organisations.demo_content:load" in demos
