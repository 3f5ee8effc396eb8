"""The indicator system of the action plan: areas, indicators, targets, departments.

The fourteen targets of the 2023-2025 plan are built in (:data:`BUILTIN`) and written
by :func:`ensure_builtin` (idempotent: rows are added when missing, built-ins brought
back to their definition). Admins add more in the page (:func:`save_indicator`) or from
an XLSX (:func:`import_xlsx`, all-or-nothing, problems named by sheet, row, column).
Today's survey- and frame-based indicators of :mod:`monitoring.results.indicators` are
listed beside them through :func:`survey_indicators`, never copied; the two built-in
survey shares here point at them by ``source_code``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.i18n import _
from monitoring.programme.models import ProgrammeArea, ProgrammeDepartment, ProgrammeIndicator
from monitoring.results import indicators as results_indicators
from tabular.reading import Problem, TableError, read_table

KINDS = ("count", "share", "ratio")
DIRECTIONS = (">", ">=", "<", "<=")
SOURCES = ("district", "department", "survey", "frame", "organisations")
#: sources whose values units report in their forms
REPORTED = ("district", "department", "organisations")
FREQUENCIES = ("yearly", "half-yearly", "quarterly")
PLAN_START, PLAN_END = 2023, 2025
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: UNESCO GNLC "Key Features of Learning Cities": 1.x wider benefits, 2.x major building
#: blocks (2.1 inclusive learning in education, 2.2 families and communities, 2.3 the
#: workplace, 2.4 modern learning technologies, 2.5 quality, 2.6 a learning culture),
#: 3.x fundamental conditions (3.1 political will, 3.2 governance, 3.3 resources)
GNLC_TAGS = ("1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6",
             "3.1", "3.2", "3.3")


def english(text: Any) -> str:
    """A message in English: a translation string's default, interpolated."""
    return text.interpolate() if hasattr(text, "interpolate") else str(text)


class CatalogueError(ValueError):
    """A definition that cannot be saved: ``faults`` are ``(field, message)`` (the
    message a translation string), ``problems`` the same as English text."""

    def __init__(self, faults: Sequence[tuple[str, Any]]) -> None:
        self.faults = list(faults)
        self.problems = [f"{name}: {english(text)}" for name, text in self.faults]
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator of the plan (the fields of :class:`ProgrammeIndicator`)."""

    code: str
    area_code: str
    name_zh: str
    name_en: str
    kind: str
    source: str
    target: float | None = None
    direction: str = ">="
    unit: str = ""
    target_year: int | None = PLAN_END
    baseline_year: int | None = None
    baseline_value: float | None = None
    source_code: str = ""
    frequency: str = "yearly"
    responsible: str = ""
    gnlc: str = ""
    change_factor: float | None = 3.0
    cumulative: bool = False
    builtin: bool = False
    position: int = 0

    def name(self, locale: str) -> str:
        return self.name_en if str(locale).startswith("en") else self.name_zh

    @property
    def departments(self) -> list[str]:
        return [c for c in self.responsible.split() if c != "districts"]


AREAS: tuple[tuple[str, str, str], ...] = (
    ("digital", "数字化终身学习", "Digital lifelong learning"),
    ("community", "社区教育", "Community education"),
    ("workers", "职工教育与学习联盟", "Workers' education and learning alliances"),
    ("culture", "学习品牌与学习文化", "Learning brands and learning culture"),
    ("organisations", "学习型组织", "Learning organisations"),
    ("participation", "居民参与", "Residents' participation"),
)
DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("education", "市教育局", "City education bureau"),
    ("open_university", "市开放大学", "City open university"),
    ("trade_union", "市总工会", "City federation of trade unions"),
    ("civil_affairs", "市民政局", "City civil affairs bureau"),
)


def _count(code: str, area: str, zh: str, en: str, target: float, source: str,
           responsible: str, gnlc: str, position: int) -> IndicatorSpec:
    return IndicatorSpec(code=code, area_code=area, name_zh=zh, name_en=en, kind="count",
                         source=source, target=target, responsible=responsible,
                         gnlc=gnlc, cumulative=True, builtin=True, baseline_year=2022,
                         baseline_value=0.0, position=position)


#: the fourteen targets of the 2023-2025 action plan (issue 19's table)
BUILTIN: tuple[IndicatorSpec, ...] = (
    _count("online_courses", "digital", "发布终身学习网上课程", "Lifelong-learning online "
           "courses published", 300, "department", "open_university education", "2.4", 10),
    _count("experimental_streets", "community", "新建社区教育实验街道", "New community-"
           "education experimental streets", 15, "district", "districts", "2.2", 20),
    _count("experimental_projects", "community", "社区教育实验项目", "Community-education "
           "experimental projects", 50, "district", "districts", "2.2", 30),
    _count("digital_communities", "digital", "新建数字化学习社区", "New digital learning "
           "communities", 30, "district", "districts", "2.4 2.2", 40),
    _count("community_bases", "community", "社区教育基地", "Community-education bases", 30,
           "district", "districts", "2.2", 50),
    _count("workers_points", "workers", "职工教育示范点", "Demonstration points for "
           "workers' education", 30, "department", "trade_union", "2.3", 60),
    _count("learning_alliances", "workers", "终身学习联盟", "Lifelong-learning alliances",
           3, "department", "education", "3.2", 70),
    _count("learning_stars", "culture", "推选“学习之星”", "\"Learning stars\" promoted",
           60, "district", "districts", "2.6", 80),
    _count("brand_projects", "culture", "终身学习品牌项目", "Lifelong-learning brand "
           "projects promoted", 60, "district", "districts", "2.6", 90),
    _count("community_learning_groups", "organisations", "社区学习共同体",
           "Community learning communities", 500, "district", "districts", "2.2", 100),
    _count("learning_teams", "organisations", "学习型团队", "Learning teams", 1000,
           "district", "districts", "2.3", 110),
    IndicatorSpec(code="older_adult_share", area_code="participation",
                  name_zh="经常参加老年教育的老年人占老年人口比例",
                  name_en="Older adults regularly in older-adult education",
                  kind="share", source="survey", source_code="older_adult_education",
                  target=0.26, direction=">", unit="%", responsible="civil_affairs",
                  gnlc="2.1", builtin=True, position=120),
    IndicatorSpec(code="residents_training_rate", area_code="participation",
                  name_zh="社区居民培训率", name_en="Community residents' training rate",
                  kind="share", source="survey", source_code="community_training_rate",
                  target=0.55, direction=">=", unit="%", responsible="education",
                  gnlc="2.2", builtin=True, position=130),
    IndicatorSpec(code="learning_type_communities", area_code="organisations",
                  name_zh="学习型社区（村）占社区（村）总数比例",
                  name_en="Learning-type communities (villages) among all communities",
                  kind="share", source="organisations", source_code="organisations",
                  target=0.80, direction=">=", unit="%", responsible="districts",
                  gnlc="2.2 3.2", builtin=True, position=140),
)


def _spec(row: ProgrammeIndicator) -> IndicatorSpec:
    return IndicatorSpec(**{f: getattr(row, f) for f in IndicatorSpec.__dataclass_fields__})


def ensure_builtin(db: Session) -> None:
    """Write the built-in areas, departments and the plan's fourteen indicators (missing
    rows added, built-in rows restored to their definition; nothing else touched)."""
    for position, (code, zh, en) in enumerate(AREAS):
        row = db.get(ProgrammeArea, code)
        if row is None:
            db.add(ProgrammeArea(code=code, name_zh=zh, name_en=en, position=position))
    for code, zh, en in DEPARTMENTS:
        if db.get(ProgrammeDepartment, code) is None:
            db.add(ProgrammeDepartment(code=code, name_zh=zh, name_en=en))
    db.flush()
    for spec in BUILTIN:
        row = db.get(ProgrammeIndicator, spec.code)
        if row is None:
            db.add(ProgrammeIndicator(**asdict(spec)))
        elif _spec(row) != spec:
            for name, value in asdict(spec).items():
                setattr(row, name, value)
    db.flush()


def list_indicators(db: Session) -> list[IndicatorSpec]:
    """Every indicator of the system, built-ins first (ordered by position, code)."""
    ensure_builtin(db)
    rows = db.scalars(sa.select(ProgrammeIndicator).order_by(
        ProgrammeIndicator.position, ProgrammeIndicator.code))
    return [_spec(r) for r in rows]


def get_indicator(db: Session, code: str) -> IndicatorSpec | None:
    """One indicator by code, or None."""
    row = db.get(ProgrammeIndicator, code)
    return _spec(row) if row is not None else None


def areas(db: Session) -> list[tuple[str, str, str]]:
    """``(code, name_zh, name_en)`` of every area, in order."""
    ensure_builtin(db)
    return [(a.code, a.name_zh, a.name_en) for a in db.scalars(
        sa.select(ProgrammeArea).order_by(ProgrammeArea.position, ProgrammeArea.code))]


def departments(db: Session) -> list[tuple[str, str, str]]:
    """``(code, name_zh, name_en)`` of every reporting department."""
    ensure_builtin(db)
    return [(d.code, d.name_zh, d.name_en) for d in db.scalars(
        sa.select(ProgrammeDepartment).order_by(ProgrammeDepartment.code))]


def survey_indicators(db: Session) -> list[results_indicators.Indicator]:
    """Today's survey- and frame-based indicators (monitoring.results), as they are."""
    return list(results_indicators.load_catalogue(db))


# ------------------------------------------------------------------ new definitions

#: the columns of an indicator definition (page fields, XLSX sheet ``indicators``)
FIELDS = ("code", "area_code", "name_zh", "name_en", "kind", "unit", "direction",
          "baseline_year", "baseline_value", "target", "target_year", "source",
          "source_code", "frequency", "responsible", "gnlc", "change_factor", "cumulative")
REQUIRED = ("code", "area_code", "name_zh", "name_en", "kind", "source")


def _number(text: str, name: str, problems: list[tuple[str, Any]],
            integer: bool = False) -> float | int | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    share = text.endswith("%")
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        problems.append((name, _("${text} is not a number", mapping={"text": repr(text)})))
        return None
    if not math.isfinite(value):
        problems.append((name, _("${text} is not a finite number",
                                  mapping={"text": repr(text)})))
        return None
    if share:
        value /= 100
    if integer:
        if value != int(value) or not 1900 <= value <= 2100:
            problems.append((name, _("${text} is not a year", mapping={"text": repr(text)})))
            return None
        return int(value)
    return value


def parse_spec(values: dict[str, str], known_areas: Iterable[str],
               known_departments: Iterable[str]) -> tuple[IndicatorSpec | None,
                                                           list[tuple[str, Any]]]:
    """Check one definition given as text fields; ``(spec, [])`` or ``(None, [(field,
    problem)...])`` naming every faulty field."""
    v = {k: str(values.get(k, "") or "").strip() for k in FIELDS}
    problems: list[tuple[str, Any]] = []
    for name in REQUIRED:
        if not v[name]:
            problems.append((name, _("is required")))
    if v["code"] and not _CODE.fullmatch(v["code"]):
        problems.append(("code", _("1 to 64 of a-z, 0-9, _ starting with a letter")))
    if v["area_code"] and v["area_code"] not in set(known_areas):
        problems.append(("area_code", _("unknown area ${code}",
                                           mapping={"code": repr(v["area_code"])})))
    for name, allowed in (("kind", KINDS), ("source", SOURCES),
                          ("direction", DIRECTIONS), ("frequency", FREQUENCIES)):
        if v[name] and v[name] not in allowed:
            problems.append((name, _("one of ${values}", mapping={"values": ", ".join(allowed)})))
    for name in ("name_zh", "name_en"):
        if len(v[name]) > 200:
            problems.append((name, _("at most 200 characters")))
    depts = set(known_departments) | {"districts"}
    unknown = [c for c in v["responsible"].split() if c not in depts]
    if unknown:
        problems.append(("responsible", _("unknown units ${codes}",
                                             mapping={"codes": ", ".join(unknown)})))
    bad_tags = [t for t in v["gnlc"].replace(",", " ").split() if t not in GNLC_TAGS]
    if bad_tags:
        problems.append(("gnlc", _("not a GNLC Key Feature: ${tags}",
                                      mapping={"tags": ", ".join(bad_tags)})))
    nums = {name: _number(v[name], name, problems, integer=name.endswith("_year"))
            for name in ("baseline_year", "baseline_value", "target", "target_year",
                         "change_factor")}
    if v["kind"] == "share":
        for name in ("target", "baseline_value"):
            if nums[name] is not None and not 0 <= nums[name] <= 1:
                problems.append((name, _("a share is between 0 and 1 (or 0% and 100%)")))
    if nums["change_factor"] is not None and nums["change_factor"] <= 1:
        problems.append(("change_factor", _("a factor above 1, e.g. 3")))
    if v["source"] == "department" and not [c for c in v["responsible"].split()
                                            if c != "districts"]:
        problems.append(("responsible", _("a department-reported indicator names its "
                                          "department(s)")))
    cumulative = v["cumulative"].lower() in ("1", "yes", "true", "是", "y")
    if problems:
        return None, problems
    return IndicatorSpec(
        code=v["code"], area_code=v["area_code"], name_zh=v["name_zh"], name_en=v["name_en"],
        kind=v["kind"], source=v["source"], target=nums["target"],
        direction=v["direction"] or ">=", unit=v["unit"][:32],
        target_year=nums["target_year"], baseline_year=nums["baseline_year"],
        baseline_value=nums["baseline_value"], source_code=v["source_code"][:64],
        frequency=v["frequency"] or "yearly",
        responsible=" ".join(v["responsible"].split()) or
        ("districts" if v["source"] in ("district", "organisations") else ""),
        gnlc=" ".join(v["gnlc"].replace(",", " ").split()),
        change_factor=nums["change_factor"], cumulative=cumulative and v["kind"] == "count",
        position=1000), []


def _store(db: Session, spec: IndicatorSpec) -> None:
    row = db.get(ProgrammeIndicator, spec.code)
    if row is None:
        db.add(ProgrammeIndicator(**asdict(spec)))
    else:
        for name, value in asdict(spec).items():
            if name not in ("builtin", "position"):
                setattr(row, name, value)


def save_indicator(db: Session, values: dict[str, str], actor: str) -> IndicatorSpec:
    """Add an indicator (or change a non-built-in one) from the page's fields (audited).
    Raises :class:`CatalogueError` with ``field: problem`` texts; nothing is stored then."""
    ensure_builtin(db)
    spec, problems = parse_spec(values, [a[0] for a in areas(db)],
                                [d[0] for d in departments(db)])
    if spec is not None and spec.code in {b.code for b in BUILTIN}:
        problems = [("code", _("${code} is a built-in indicator of the plan",
                                     mapping={"code": repr(spec.code)}))]
    if problems:
        raise CatalogueError(problems)
    assert spec is not None
    _store(db, spec)
    audit.record(db, actor=actor, action="programme.indicator.save", target=spec.code,
                 detail={"kind": spec.kind, "source": spec.source, "target": spec.target})
    db.flush()
    return spec


#: the XLSX sheet admins fill to add indicators (one row per indicator)
SHEET = "indicators"


def import_xlsx(db: Session, data: bytes, filename: str, actor: str,
                max_bytes: int = 2 * 1024 * 1024,
                translate: Callable[[Any], str] | None = None) -> list[IndicatorSpec]:
    """Add or change indicators from the ``indicators`` sheet of an XLSX (columns
    :data:`FIELDS`). All or nothing: any fault raises :class:`tabular.reading.TableError`
    naming sheet, row and column, and nothing is stored (audited when stored).
    ``translate`` says the problems in the reader's language (English by default)."""
    translate = translate or english
    ensure_builtin(db)
    table = read_table(data, filename, sheet=SHEET, required=REQUIRED, max_rows=500,
                       max_bytes=max_bytes)
    known_areas = [a[0] for a in areas(db)]
    known_depts = [d[0] for d in departments(db)]
    builtin = {b.code for b in BUILTIN}
    problems: list[Problem] = []
    specs: list[IndicatorSpec] = []
    seen: set[str] = set()
    for number, record in table.records():
        spec, faults = parse_spec(record, known_areas, known_depts)
        if spec is not None and spec.code in builtin:
            faults = [("code", _("${code} is a built-in indicator of the plan",
                                   mapping={"code": repr(spec.code)}))]
        if spec is not None and spec.code in seen:
            faults = [("code", _("${code} appears twice", mapping={"code": repr(spec.code)}))]
        for name, text in faults:
            problems.append(Problem(filename, table.sheet or SHEET, number, name,
                                    translate(text)))
        if spec is not None and not faults:
            seen.add(spec.code)
            specs.append(spec)
    if not specs and not problems:
        problems.append(Problem(filename, table.sheet or SHEET, None, None,
                                translate(_("the sheet has no indicator rows"))))
    if problems:
        raise TableError(problems)
    for spec in specs:
        _store(db, spec)
    audit.record(db, actor=actor, action="programme.indicator.import", target=filename[:200],
                 detail={"codes": [s.code for s in specs], "sha256": table.sha256})
    db.flush()
    return specs


@dataclass
class Tree:
    """The hierarchy for the pages: area -> its indicators."""

    areas: list[tuple[str, str, str, list[IndicatorSpec]]] = field(default_factory=list)


def tree(db: Session) -> Tree:
    """Areas in order, each with its indicators."""
    specs = list_indicators(db)
    return Tree([(code, zh, en, [s for s in specs if s.area_code == code])
                 for code, zh, en in areas(db)])
