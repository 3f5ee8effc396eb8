"""Demo loader: a few organisations per demo district, the standard for communities of
2025 and simulated evaluations (every row labelled simulated).

Per district: five communities/villages, a school, an enterprise and a government
agency. Four of the five communities have a simulated 2025 evaluation (self-assessment,
district review, city confirmation; levels drawn with a fixed seed, so the recognised
share differs by district); the fifth has none, so a visitor can issue its link and try
the self-assessment. Idempotent: a district whose demo organisations exist is left alone.
"""
from __future__ import annotations

import random

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.db import utcnow
from learningcity.districts import list_districts
from monitoring.organisations.models import Evaluation, EvaluationStandard, Organisation
from monitoring.organisations.standards import (
    EXAMPLE,
    criteria,
    is_recognised,
    upload_standard,
    weighted_score,
)

DEMO_ACTOR = "demo"
DEMO_YEAR = 2025
DEMO_SEED = 20251219
#: the twelve demo districts of learningcity.demo (other databases get nothing)
DEMO_DISTRICT_PREFIX = "D"
COMMUNITIES = ("幸福社区", "和平社区", "东风村", "桥头村", "新华社区")
OTHERS = (("school", "第一中学", "No. 1 Middle School"),
          ("enterprise", "机械制造有限公司", "Machinery Co., Ltd."),
          ("government", "区人力资源和社会保障局", "Human Resources and Social Security Bureau"))


def _standard(db: Session) -> EvaluationStandard:
    found = db.scalar(sa.select(EvaluationStandard).where(
        EvaluationStandard.kind == "community", EvaluationStandard.year == DEMO_YEAR)
        .order_by(EvaluationStandard.version.desc()).limit(1))
    if found is not None:
        return found
    # start-up cost: the XLSX writer loads only when the demo standard is first made
    from monitoring.organisations.standards import example_workbook

    return upload_standard(db, "demo-community-standard.xlsx", example_workbook(EXAMPLE),
                           actor=DEMO_ACTOR)


def load(db: Session) -> None:
    """Add the demo organisations, standard and simulated evaluations that are missing."""
    districts = [d for d in list_districts(db) if d.code.startswith(DEMO_DISTRICT_PREFIX)]
    if not districts:
        return
    standard = _standard(db)
    rng = random.Random(DEMO_SEED)
    levels = [item["level"] for item in criteria(standard)[0]["levels"]]
    now = utcnow()
    for district in districts:
        first = f"{district.code}-C1"
        if db.scalar(sa.select(Organisation.id).where(Organisation.code == first)):
            continue
        # a district's own leaning: stronger districts have more recognised communities
        strength = rng.uniform(0.2, 1.2)
        for n, name in enumerate(COMMUNITIES, start=1):
            organisation = Organisation(
                code=f"{district.code}-C{n}", district_code=district.code, kind="community",
                name_zh=f"{district.name_zh}{name}", name_en=f"{district.name_en} community {n}",
                simulated=True, created_by=DEMO_ACTOR, updated_by=DEMO_ACTOR)
            db.add(organisation)
            if n == len(COMMUNITIES):
                continue  # left for the visitor: issue its link and try it
            weights = [strength, 0.5, 0.12, 0.04]
            own = {c["code"]: rng.choices(levels, weights=weights)[0]
                   for c in criteria(standard)}
            reviewed = {code: level if rng.random() < 0.8 else
                        levels[min(levels.index(level) + 1, len(levels) - 1)]
                        for code, level in own.items()}
            comments = {code: "区级复核：佐证材料不足（模拟）" for code in own
                        if reviewed[code] != own[code]}
            score = weighted_score(standard, reviewed)
            db.add(Evaluation(
                organisation=organisation, standard=standard, year=DEMO_YEAR,
                status="confirmed", self_levels=own,
                self_notes={code: "模拟自评说明" for code in own}, submitted_at=now,
                review_levels=reviewed, review_comments=comments, score=score,
                recognised=is_recognised(standard, score), reviewed_at=now,
                reviewed_by=DEMO_ACTOR, confirmed_at=now, confirmed_by=DEMO_ACTOR,
                simulated=True))
        for kind, zh, en in OTHERS:
            db.add(Organisation(
                code=f"{district.code}-{kind[0].upper()}1", district_code=district.code,
                kind=kind, name_zh=f"{district.name_zh}{zh}",
                name_en=f"{district.name_en} {en}", simulated=True,
                created_by=DEMO_ACTOR, updated_by=DEMO_ACTOR))
    db.flush()
