"""Fixtures of the archive tests: the synthetic monitoring campaigns (A-2025 ...), the
demo districts and demo learning organisations (2025) with one evidence file, and the
contributors as setup.cfg declares them (they are installed only at the next
``pip install -e .``)."""
from __future__ import annotations

import configparser
import importlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_once
from tests.monitoring.results.conftest import aggregated, computed  # noqa: F401

EVIDENCE = b"%PDF-1.4\n% evidence of the archive tests\n%%EOF\n"


def declared_sections() -> dict[str, Any]:
    """The ``learningcity.archive_sections`` contributors setup.cfg declares, loaded."""
    parser = configparser.ConfigParser()
    parser.read(Path(__file__).resolve().parents[3] / "setup.cfg", encoding="utf-8")
    out = {}
    for line in parser.get("options.entry_points", "learningcity.archive_sections").splitlines():
        if "=" in line:
            name, target = (s.strip() for s in line.split("=", 1))
            module, attr = target.split(":")
            out[name] = getattr(importlib.import_module(module), attr)
    return out


@pytest.fixture
def sections(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The declared contributors, also as the registered ones (``bundle.contributors``)."""
    from monitoring.archive import bundle

    found = declared_sections()
    monkeypatch.setattr(bundle, "contributors", lambda: dict(found))
    return found


@pytest.fixture
def year_data(dbsession: Any, aggregated: Any) -> Any:  # noqa: F811
    """Monitoring aggregates of 2025 (A-2025), the demo organisations of 2025 and an
    evidence file on one confirmed evaluation."""
    from learningcity import demo
    from monitoring.organisations import demo_content, recognition
    from monitoring.organisations.models import EvaluationEvidence

    load_once(dbsession, "archive demo organisations",
              lambda db: (demo.load(db), demo_content.load(db)))
    confirmed = sorted((e for e in recognition.evaluations_of_year(dbsession, 2025).values()
                        if e.status == "confirmed"), key=lambda e: e.id)
    e = confirmed[0]
    criterion = e.standard.definition["criteria"][0]["code"]
    e.evidence.append(EvaluationEvidence(criterion=criterion, filename="会议记录 minutes.pdf",
                                         media_type="application/pdf", size=len(EVIDENCE),
                                         sha256="0" * 64, content=EVIDENCE))
    dbsession.commit()
    return dbsession
