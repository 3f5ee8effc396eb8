"""The register of learning organisations: by kind and district; add, edit, XLSX import.

District staff keep their own district's register; admins all. An import is all or
nothing: every row is checked first (district, kind, code, names; one problem per
sheet, row and column), then rows are added or updated by their ``code``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.districts import district_codes
from learningcity.i18n import _
from monitoring.fieldwork.campaigns import Said
from monitoring.organisations.models import KINDS, Organisation
from tabular.reading import Problems, TableError, is_xlsx, read_sheets, read_table

#: page labels of the kinds (msgids; the zh catalogue has the plan's words)
KIND_LABELS: dict[str, Any] = {
    "party": _("Party organisations"),
    "government": _("Government agencies"),
    "enterprise": _("Enterprises and institutions"),
    "school": _("Schools"),
    "community": _("Communities and villages"),
    "social": _("Social groups"),
}
#: the names an import accepts for a kind besides its code (the template lists them)
KIND_NAMES: dict[str, tuple[str, str]] = {
    "party": ("党组织", "Party organisations"),
    "government": ("机关", "Government agencies"),
    "enterprise": ("企事业单位", "Enterprises and institutions"),
    "school": ("学校", "Schools"),
    "community": ("社区（村）", "Communities and villages"),
    "social": ("社会团体", "Social groups"),
}
REGISTER_SHEET = "organisations"
REGISTER_COLUMNS = ("code", "district", "kind", "name_zh", "name_en")
CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_CHARS = 200
#: rows of one register file (a city has a few thousand organisations)
MAX_ROWS = 20_000


class RegisterError(ValueError):
    """A register change that cannot be made; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ImportResult:
    """What an import did: organisations added and updated."""

    added: int
    updated: int


def kind_of(text: str) -> str | None:
    """The kind code a cell names (its code, Chinese or English name), or None."""
    cleaned = text.strip()
    if cleaned.lower() in KINDS:
        return cleaned.lower()
    for code, names in KIND_NAMES.items():
        if cleaned in names or cleaned.lower() == names[1].lower():
            return code
    return None


# ------------------------------------------------------------------ queries

def visible_organisations(db: Session, district: str | None, kind: str | None = None
                          ) -> list[Organisation]:
    """The register as a staff member may see it: one district (``district``) or all
    (None), optionally one kind; by district, kind and code."""
    query = sa.select(Organisation).order_by(Organisation.district_code, Organisation.kind,
                                             Organisation.code)
    if district is not None:
        query = query.where(Organisation.district_code == district)
    if kind:
        query = query.where(Organisation.kind == kind)
    return list(db.scalars(query))


def get_organisation(db: Session, organisation_id: int) -> Organisation | None:
    return db.get(Organisation, organisation_id)


def counts_by_kind(db: Session, district: str | None) -> dict[str, int]:
    """How many active organisations of each kind (one district or all)."""
    query = sa.select(Organisation.kind, sa.func.count()).where(
        Organisation.active.is_(True)).group_by(Organisation.kind)
    if district is not None:
        query = query.where(Organisation.district_code == district)
    found = dict(db.execute(query).all())
    return {kind: int(found.get(kind, 0)) for kind in KINDS}


# ------------------------------------------------------------------ checks

def _check(values: dict[str, str], known_districts: set[str], scope: str | None,
           add: Any) -> dict[str, Any]:
    """Check one organisation's fields; ``add(column, message)`` for each problem."""
    code = values.get("code", "").strip()
    if not code:
        add("code", Said(_("a code is required")))
    elif not CODE_PATTERN.fullmatch(code):
        add("code", Said(_("'${code}' is not a code: letters, digits, '.', '_' or '-', at "
                         "most 64 characters"), code=code[:80]))
    district = values.get("district", "").strip()
    if not district:
        add("district", Said(_("a district is required")))
    elif district not in known_districts:
        add("district", Said(_("unknown district '${district}'"), district=district[:40]))
    elif scope is not None and district != scope:
        add("district", Said(_("district '${district}' is not yours (${own})"),
                             district=district, own=scope))
    kind_text = values.get("kind", "")
    kind = kind_of(kind_text)
    if kind is None:
        add("kind", Said(_("unknown kind '${kind}'; use one of ${kinds}"),
                         kind=kind_text.strip()[:40], kinds=", ".join(KINDS)))
    name_zh = values.get("name_zh", "").strip()
    name_en = values.get("name_en", "").strip()
    if not name_zh:
        add("name_zh", Said(_("a Chinese name is required")))
    for column, name in (("name_zh", name_zh), ("name_en", name_en)):
        if len(name) > NAME_CHARS:
            add(column, Said(_("longer than ${limit} characters"), limit=NAME_CHARS))
    return {"code": code, "district_code": district, "kind": kind, "name_zh": name_zh,
            "name_en": name_en}


def _form_check(db: Session, values: dict[str, str], scope: str | None) -> dict[str, Any]:
    problems: list[str] = []
    clean = _check(values, set(district_codes(db)), scope,
                   lambda _column, message: problems.append(message))
    if problems:
        raise RegisterError(problems)
    return clean


# ------------------------------------------------------------------ add and edit

def add_organisation(db: Session, values: dict[str, str], *, actor: str,
                     scope: str | None = None) -> Organisation:
    """Add one organisation (``scope``: the only district the actor may use)."""
    clean = _form_check(db, values, scope)
    if db.scalar(sa.select(Organisation.id).where(Organisation.code == clean["code"])):
        raise RegisterError([Said(_("the code '${code}' is already in the register"),
                                  code=clean["code"])])
    organisation = Organisation(**clean, created_by=actor, updated_by=actor)
    db.add(organisation)
    db.flush()
    audit.record(db, actor=actor, action="organisation.add",
                 target=f"organisation:{clean['code']}",
                 detail={"district": clean["district_code"], "kind": clean["kind"]})
    return organisation


def update_organisation(db: Session, organisation: Organisation, values: dict[str, str],
                        *, actor: str, scope: str | None = None,
                        active: bool = True) -> Organisation:
    """Change an organisation's district, kind, names or active flag (its code stays)."""
    clean = _form_check(db, {**values, "code": organisation.code}, scope)
    before = {k: getattr(organisation, k) for k in ("district_code", "kind", "name_zh",
                                                     "name_en", "active")}
    for key in ("district_code", "kind", "name_zh", "name_en"):
        setattr(organisation, key, clean[key])
    organisation.active = active
    organisation.updated_at, organisation.updated_by = utcnow(), actor
    after = {k: getattr(organisation, k) for k in before}
    changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changed:
        audit.record(db, actor=actor, action="organisation.edit",
                     target=f"organisation:{organisation.code}", detail=changed)
    return organisation


# ------------------------------------------------------------------ import

def import_register(db: Session, filename: str, data: bytes, *, actor: str,
                    scope: str | None = None, max_bytes: int = 10 * 1024 * 1024
                    ) -> ImportResult:
    """Add or update organisations from the sheet ``organisations`` of an XLSX (or a
    CSV) with the columns ``code, district, kind, name_zh, name_en``. Raises
    :class:`tabular.reading.TableError` naming sheet, row and column of every problem,
    and then nothing is changed."""
    if len(data) > max_bytes:
        problems = Problems(filename)
        problems.add(None, None, Said(_("the file is larger than ${mb} MB"),
                                      mb=max_bytes // (1024 * 1024)))
        problems.raise_if_any()
    if is_xlsx(data, filename):
        tables = read_sheets(data, filename, [REGISTER_SHEET], max_rows=MAX_ROWS)
        if REGISTER_SHEET not in tables:
            problems = Problems(filename)
            problems.add(None, None, Said(_("the workbook has no sheet '${sheet}'"),
                                          sheet=REGISTER_SHEET))
            problems.raise_if_any()
        table = tables[REGISTER_SHEET]
    else:
        table = read_table(data, filename, max_rows=MAX_ROWS)
    problems = table.problems()
    missing = [c for c in REGISTER_COLUMNS[:4] if c not in table.header]
    for column in missing:
        problems.add(table.header_row, column, Said(_("column not found; the header has: "
                                                    "${names}"), names=", ".join(table.header)))
    problems.raise_if_any()
    known = set(district_codes(db))
    rows: list[tuple[int, dict[str, Any]]] = []
    first_row: dict[str, int] = {}
    for number, record in table.records():
        clean = _check(record, known, scope,
                       lambda column, message, n=number: problems.add(n, column, message))
        code = clean["code"]
        if code and code in first_row:
            problems.add(number, "code", Said(_("the code '${code}' appears again (first in "
                                              "row ${row})"), code=code, row=first_row[code]))
        elif code:
            first_row[code] = number
        rows.append((number, clean))
    if not rows:
        problems.add(None, None, Said(_("the sheet has no organisations")))
    existing = {o.code: o for o in db.scalars(sa.select(Organisation).where(
        Organisation.code.in_([r["code"] for _n, r in rows if r["code"]])))}
    if scope is not None:
        for number, clean in rows:
            found = existing.get(clean["code"])
            if found is not None and found.district_code != scope:
                problems.add(number, "code", Said(_("the code '${code}' belongs to another "
                                                  "district's organisation"),
                                                  code=clean["code"]))
    problems.raise_if_any()
    added = updated = 0
    now = utcnow()
    for _number, clean in rows:
        found = existing.get(clean["code"])
        if found is None:
            db.add(Organisation(**clean, created_by=actor, updated_by=actor))
            added += 1
        elif any(getattr(found, k) != clean[k] for k in ("district_code", "kind", "name_zh",
                                                         "name_en")):
            for key in ("district_code", "kind", "name_zh", "name_en"):
                setattr(found, key, clean[key])
            found.updated_at, found.updated_by = now, actor
            updated += 1
    db.flush()
    audit.record(db, actor=actor, action="organisation.import", target=filename[:200],
                 detail={"sha256": table.sha256, "rows": len(rows), "added": added,
                         "updated": updated, "district": scope})
    return ImportResult(added, updated)


def register_template(db: Session, scope: str | None) -> bytes:
    """The register as an XLSX workbook to fill in (or edit and import back): the sheet
    ``organisations`` with the current rows, and ``kinds`` naming the kinds."""
    # start-up cost: pandas and the XLSX writer load only for this download
    import pandas as pd

    from tabular.writing import Sheet, write_workbook

    rows = [{"code": o.code, "district": o.district_code, "kind": o.kind,
             "name_zh": o.name_zh, "name_en": o.name_en}
            for o in visible_organisations(db, scope)]
    frame = pd.DataFrame(rows, columns=list(REGISTER_COLUMNS))
    kinds = pd.DataFrame([{"kind": k, "name_zh": KIND_NAMES[k][0], "name_en": KIND_NAMES[k][1]}
                          for k in KINDS])
    return write_workbook([Sheet(REGISTER_SHEET, frame,
                                 column_widths={"name_zh": 30, "name_en": 30}),
                           Sheet("kinds", kinds, column_widths={"name_en": 30})])


__all__ = ["KIND_LABELS", "KIND_NAMES", "ImportResult", "RegisterError", "TableError",
           "add_organisation", "counts_by_kind", "get_organisation", "import_register",
           "kind_of", "register_template", "update_organisation", "visible_organisations"]
