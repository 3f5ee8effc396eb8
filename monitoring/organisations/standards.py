"""Evaluation standards of learning organisations, authored as XLSX and versioned.

A standard belongs to one kind of organisation and one year. Its workbook has three
sheets (the template download is a filled example):

* ``standard``: rows ``field | value`` for ``kind``, ``year``, ``title_zh``,
  ``title_en`` and ``threshold`` (the weighted score, 0-100, at which an organisation
  is recognised);
* ``criteria``: ``code | name_zh | name_en | weight``; weights add up to 100 or to 1;
* ``levels``: ``criterion | level | points | descriptor_zh | descriptor_en``; each
  criterion has at least two levels, the most points of a criterion is its full mark.

Every problem is reported with its sheet, row and column, and then nothing is stored.
A stored version never changes (evaluations made against it keep their meaning); a
changed standard is uploaded as the next version of its kind and year, and new
evaluations use the latest version.

The weighted score of an evaluation is ``100 * sum(weight_c * points_c / full_c)``
over the criteria (weights as fractions), so it reads as a percentage of the full mark
whatever the points of the rubric.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.i18n import _
from monitoring.fieldwork.campaigns import Said
from monitoring.organisations.models import KINDS, Evaluation, EvaluationStandard
from monitoring.organisations.register import kind_of
from tabular.reading import Problems, TableError, read_sheets

SHEETS = ("standard", "criteria", "levels")
FIELDS = ("kind", "year", "title_zh", "title_en", "threshold")
CRITERIA_COLUMNS = ("code", "name_zh", "name_en", "weight")
LEVEL_COLUMNS = ("criterion", "level", "points", "descriptor_zh", "descriptor_en")
CRITERION_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
MAX_CRITERIA = 60
MAX_LEVELS = 10
MAX_BYTES = 2 * 1024 * 1024
TEXT_CHARS = 2000

#: the example standard of the template (and the demo's standard for communities)
EXAMPLE: dict[str, Any] = {
    "kind": "community", "year": 2025, "threshold": 75,
    "title_zh": "学习型社区（村）评价标准", "title_en": "Learning community (village) standard",
    "criteria": [
        ("organisation", "组织领导", "Leadership and organisation", 20),
        ("facilities", "学习场所与资源", "Learning places and resources", 20),
        ("activities", "学习活动", "Learning activities", 30),
        ("participation", "居民参与", "Residents' participation", 20),
        ("results", "学习成效", "Results of learning", 10),
    ],
    "levels": [
        ("A", 4, "达到并超过要求，有示范作用",
         "Meets and exceeds the standard; a model for others"),
        ("B", 3, "达到要求", "Meets the standard"),
        ("C", 2, "基本达到要求", "Mostly meets the standard"),
        ("D", 0, "未达到要求", "Does not meet the standard"),
    ],
}


class StandardError(TableError):
    """A standard workbook was refused (every problem with its sheet, row and column)."""


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_standard(data: bytes, filename: str) -> dict[str, Any]:
    """The standard a workbook describes, checked: ``{kind, year, title_zh, title_en,
    threshold, criteria: [...]}`` (weights as fractions adding up to 1). Raises
    :class:`StandardError` naming sheet, row and column of every problem."""
    if len(data) > MAX_BYTES:
        problems = Problems(filename)
        problems.add(None, None, Said(_("the file is larger than ${mb} MB"),
                                      mb=MAX_BYTES // (1024 * 1024)))
        raise StandardError(problems.kept, problems.total)
    try:
        tables = read_sheets(data, filename, SHEETS, max_rows=2000)
    except TableError as exc:
        raise StandardError(exc.problems, exc.total) from None
    all_problems = Problems(filename)
    for sheet in SHEETS:
        if sheet not in tables:
            all_problems.add(None, None, Said(_("the workbook has no sheet '${sheet}'"),
                                              sheet=sheet))
    if all_problems:
        raise StandardError(all_problems.kept, all_problems.total)
    required = {"standard": ("field", "value"), "criteria": ("code", "name_zh", "weight"),
                "levels": LEVEL_COLUMNS[:4]}
    for sheet, columns in required.items():
        table = tables[sheet]
        for column in columns:
            if column not in table.header:
                problems = table.problems()
                problems.add(table.header_row, column, Said(
                    "column not found; the header has: ${names}",
                    names=", ".join(table.header)))
                all_problems.merge(problems)
    if all_problems:
        raise StandardError(all_problems.kept, all_problems.total)
    head = _standard_sheet(tables["standard"], all_problems)
    criteria = _criteria_sheet(tables["criteria"], all_problems)
    _levels_sheet(tables["levels"], criteria, all_problems)
    if all_problems:
        raise StandardError(all_problems.kept, all_problems.total)
    head["criteria"] = list(criteria.values())
    return head


def _standard_sheet(table: Any, out: Problems) -> dict[str, Any]:
    problems = table.problems()
    seen: dict[str, tuple[int, str]] = {}
    for number, record in table.records():
        field = record["field"].strip().lower()
        if field not in FIELDS:
            problems.add(number, "field", Said(_("unknown field '${field}'; use ${fields}"),
                                               field=field[:40], fields=", ".join(FIELDS)))
        elif field in seen:
            problems.add(number, "field", Said(_("'${field}' appears twice"), field=field))
        else:
            seen[field] = (number, record["value"].strip())
    head: dict[str, Any] = {}
    last = table.rows[-1].number if table.rows else table.header_row
    for field in ("kind", "year", "title_zh", "threshold"):
        if not seen.get(field, (0, ""))[1]:
            problems.add(seen.get(field, (last, ""))[0], "value",
                         Said(_("'${field}' is required"), field=field))
    if "kind" in seen and seen["kind"][1]:
        kind = kind_of(seen["kind"][1])
        if kind is None:
            problems.add(seen["kind"][0], "value", Said(
                "unknown kind '${kind}'; use one of ${kinds}", kind=seen["kind"][1][:40],
                kinds=", ".join(KINDS)))
        head["kind"] = kind
    if "year" in seen and seen["year"][1]:
        year = _number(seen["year"][1])
        if year is None or year != int(year) or not 2000 <= year <= 2100:
            problems.add(seen["year"][0], "value", Said(
                "the year must be a whole number from 2000 to 2100, not '${value}'",
                value=seen["year"][1][:20]))
        else:
            head["year"] = int(year)
    if "threshold" in seen and seen["threshold"][1]:
        threshold = _number(seen["threshold"][1])
        if threshold is None or not 0 < threshold <= 100:
            problems.add(seen["threshold"][0], "value", Said(
                "the threshold is a weighted score above 0 and at most 100, not '${value}'",
                value=seen["threshold"][1][:20]))
        else:
            head["threshold"] = threshold
    for field in ("title_zh", "title_en"):
        text = seen.get(field, (0, ""))[1]
        if len(text) > 200:
            problems.add(seen[field][0], "value", Said(_("longer than ${limit} characters"),
                                                       limit=200))
        head[field] = text[:200]
    out.merge(problems)
    return head


def _criteria_sheet(table: Any, out: Problems) -> dict[str, dict[str, Any]]:
    problems = table.problems()
    criteria: dict[str, dict[str, Any]] = {}
    weights: list[float] = []
    for number, record in table.records():
        code = record["code"].strip()
        if not CRITERION_CODE.fullmatch(code):
            problems.add(number, "code", Said(
                "'${code}' is not a criterion code: letters, digits, '.', '_' or '-', at "
                "most 32 characters", code=code[:40]))
        elif code in criteria:
            problems.add(number, "code", Said(_("the criterion '${code}' appears twice"),
                                              code=code))
        if not record["name_zh"].strip():
            problems.add(number, "name_zh", Said(_("a Chinese name is required")))
        weight = _number(record["weight"])
        if weight is None or weight <= 0:
            problems.add(number, "weight", Said(_("the weight must be a number above 0, not "
                                                "'${value}'"), value=record["weight"][:20]))
        else:
            weights.append(weight)
        if code and code not in criteria:
            criteria[code] = {"code": code, "name_zh": record["name_zh"].strip()[:200],
                              "name_en": record.get("name_en", "").strip()[:200],
                              "weight": weight or 0.0, "levels": [], "row": number}
    if not criteria and not problems:
        problems.add(None, None, Said(_("the sheet has no criteria")))
    if len(criteria) > MAX_CRITERIA:
        problems.add(None, None, Said(_("more than ${limit} criteria"), limit=MAX_CRITERIA))
    total = sum(weights)
    if criteria and len(weights) == len(criteria) and not problems:
        if abs(total - 100) <= 0.01:
            scale = 100.0
        elif abs(total - 1) <= 0.0001:
            scale = 1.0
        else:
            scale = 0.0
            problems.add(None, "weight", Said(
                "the weights add up to ${total}; they must add up to 100 or to 1",
                total=f"{total:g}"))
        for criterion in criteria.values():
            criterion["weight"] = criterion["weight"] / scale if scale else 0.0
    out.merge(problems)
    return criteria


def _levels_sheet(table: Any, criteria: dict[str, dict[str, Any]], out: Problems) -> None:
    problems = table.problems()
    for number, record in table.records():
        code = record["criterion"].strip()
        criterion = criteria.get(code)
        if criterion is None:
            problems.add(number, "criterion", Said(
                "unknown criterion '${code}' (not on the sheet 'criteria')", code=code[:40]))
            continue
        level = record["level"].strip()
        if not level or len(level) > 16:
            problems.add(number, "level", Said(_("a level name of at most 16 characters is "
                                               "required")))
        elif any(item["level"] == level for item in criterion["levels"]):
            problems.add(number, "level", Said(_("the level '${level}' of '${code}' appears "
                                               "twice"), level=level, code=code))
        points = _number(record["points"])
        if points is None or points < 0:
            problems.add(number, "points", Said(_("points must be a number of at least 0, not "
                                                "'${value}'"), value=record["points"][:20]))
        descriptor_zh = record["descriptor_zh"].strip()
        if not descriptor_zh:
            problems.add(number, "descriptor_zh", Said(_("a descriptor is required")))
        for column in ("descriptor_zh", "descriptor_en"):
            if len(record.get(column, "")) > TEXT_CHARS:
                problems.add(number, column, Said(_("longer than ${limit} characters"),
                                                  limit=TEXT_CHARS))
        criterion["levels"].append({"level": level, "points": points or 0.0,
                                    "descriptor_zh": descriptor_zh[:TEXT_CHARS],
                                    "descriptor_en": record.get("descriptor_en", "")
                                    .strip()[:TEXT_CHARS], "row": number})
    last = table.rows[-1].number if table.rows else table.header_row
    for code, criterion in criteria.items():
        levels = criterion["levels"]
        if len(levels) < 2:
            problems.add(last, "criterion", Said(
                "the criterion '${code}' needs at least two levels (it has ${n})",
                code=code, n=len(levels)))
        elif len(levels) > MAX_LEVELS:
            problems.add(last, "criterion", Said(_("the criterion '${code}' has more than "
                                                 "${limit} levels"), code=code,
                                                 limit=MAX_LEVELS))
        elif max(item["points"] for item in levels) <= 0:
            problems.add(levels[0]["row"], "points", Said(
                "the levels of '${code}' give no points at all", code=code))
    out.merge(problems)
    for criterion in criteria.values():
        criterion.pop("row", None)
        for item in criterion["levels"]:
            item.pop("row", None)


# ------------------------------------------------------------------ storing

def upload_standard(db: Session, filename: str, data: bytes, *, actor: str
                    ) -> EvaluationStandard:
    """Store a checked workbook as the next version of its kind and year."""
    parsed = parse_standard(data, filename)
    version = (db.scalar(sa.select(sa.func.max(EvaluationStandard.version)).where(
        EvaluationStandard.kind == parsed["kind"],
        EvaluationStandard.year == parsed["year"])) or 0) + 1
    standard = EvaluationStandard(
        kind=parsed["kind"], year=parsed["year"], version=version,
        title_zh=parsed["title_zh"], title_en=parsed["title_en"],
        threshold=parsed["threshold"], definition={"criteria": parsed["criteria"]},
        filename=filename[:255], sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=actor)
    db.add(standard)
    db.flush()
    audit.record(db, actor=actor, action="standard.upload", target=f"standard:{standard.id}",
                 detail={"kind": standard.kind, "year": standard.year, "version": version,
                         "sha256": standard.sha256})
    return standard


def list_standards(db: Session) -> list[EvaluationStandard]:
    """Every stored version, newest year first, then kind, then latest version first."""
    return list(db.scalars(sa.select(EvaluationStandard).order_by(
        EvaluationStandard.year.desc(), EvaluationStandard.kind,
        EvaluationStandard.version.desc())))


def get_standard(db: Session, standard_id: int) -> EvaluationStandard | None:
    return db.get(EvaluationStandard, standard_id)


def current_standard(db: Session, kind: str, year: int) -> EvaluationStandard | None:
    """The latest version of the standard of a kind and year (what new evaluations use)."""
    return db.scalar(sa.select(EvaluationStandard).where(
        EvaluationStandard.kind == kind, EvaluationStandard.year == year)
        .order_by(EvaluationStandard.version.desc()).limit(1))


def uses(db: Session, standard: EvaluationStandard) -> int:
    """How many evaluations were made against this version (then it can never change)."""
    return db.scalar(sa.select(sa.func.count(Evaluation.id)).where(
        Evaluation.standard_id == standard.id)) or 0


# ------------------------------------------------------------------ scoring

def criteria(standard: EvaluationStandard) -> list[dict[str, Any]]:
    return list(standard.definition.get("criteria", []))


def level_points(criterion: Mapping[str, Any], level: str) -> float | None:
    for item in criterion["levels"]:
        if item["level"] == level:
            return float(item["points"])
    return None


def weighted_score(standard: EvaluationStandard, levels: Mapping[str, str]) -> float:
    """``100 * sum(weight * points / full mark)`` over the criteria (a criterion without
    a level scores 0)."""
    total = 0.0
    for criterion in criteria(standard):
        full = max(float(item["points"]) for item in criterion["levels"])
        points = level_points(criterion, levels.get(criterion["code"], "")) or 0.0
        total += float(criterion["weight"]) * points / full
    return round(100 * total, 6)


def is_recognised(standard: EvaluationStandard, score: float) -> bool:
    """Recognised when the weighted score reaches the threshold."""
    return score >= float(standard.threshold) - 1e-9


# ------------------------------------------------------------------ the template

def example_workbook(example: Mapping[str, Any] = EXAMPLE) -> bytes:
    """The template: a filled example standard in the three sheets."""
    # start-up cost: pandas and the XLSX writer load only for this download
    import pandas as pd

    from tabular.writing import Sheet, write_workbook

    head = pd.DataFrame([{"field": f, "value": example[f]} for f in FIELDS])
    crit = pd.DataFrame([dict(zip(CRITERIA_COLUMNS, row, strict=True))
                         for row in example["criteria"]])
    levels = pd.DataFrame([{"criterion": c[0], "level": lv[0], "points": lv[1],
                            "descriptor_zh": lv[2], "descriptor_en": lv[3]}
                           for c in example["criteria"] for lv in example["levels"]])
    return write_workbook([
        Sheet("standard", head, column_widths={"value": 40}),
        Sheet("criteria", crit, column_widths={"name_zh": 24, "name_en": 32}),
        Sheet("levels", levels, column_widths={"descriptor_zh": 40, "descriptor_en": 50},
              wrap_text=True)])
