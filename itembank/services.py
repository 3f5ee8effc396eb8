"""Item bank logic: importing items, versions, status changes, calibrations, publishing.

Functions take a SQLAlchemy session and plain values, never a request; they
flush but do not commit (pyramid_tm or the command line owns the transaction).
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from learningcity import audit
from scoring import catalogue
from scoring.params import ItemParams
from tabular.guard import guard_cell
from tabular.reading import TableError

from .content import VersionContent
from .importing import ImportReport, ItemSpec
from .models import (
    STATUS_FLOW,
    Calibration,
    CalibrationEvent,
    CalibrationItem,
    Domain,
    Instrument,
    Item,
    ItemResponse,
    ItemStatusChange,
    ItemVersion,
)
from .scale import default_levels, level_for, se_to_scale, to_scale


class BankError(ValueError):
    """A request the bank refuses; the message says what is wrong."""


class ImportRejected(BankError, TableError):
    """An import with problems: nothing was changed. ``report`` lists every problem, which
    are also this error's ``problems`` (tabular's error type, file, sheet, row, column);
    ``str()`` is the report's summary."""

    def __init__(self, report: ImportReport) -> None:
        TableError.__init__(self, report.problems)
        self.args = (report.summary(),)
        self.report = report

    def __str__(self) -> str:
        return self.report.summary()


@dataclass
class ImportOutcome:
    created: list[str]
    new_versions: list[str]
    unchanged: list[str]
    status_changed: list[str]


# --- items ------------------------------------------------------------------

def get_item(db: Session, code: str) -> Item | None:
    return db.scalar(sa.select(Item).where(Item.code == code)
                     .options(selectinload(Item.versions)))


def _content(spec_or_version: Any) -> tuple:
    return (spec_or_version.stem_zh, spec_or_version.stem_en,
            [dict(o) for o in spec_or_version.options], spec_or_version.key,
            bool(spec_or_version.reverse), spec_or_version.media or None)


def import_items(db: Session, report: ImportReport, actor: str) -> ImportOutcome:
    """Create or update every item of a checked file, or nothing at all.

    Checks against the bank (unknown domain, a code that changes type) are added
    to the file's own problems; any problem raises ImportRejected before a change.
    Changed content becomes a new version; unchanged items are left alone.
    """
    domains = set(db.scalars(sa.select(Domain.code)))
    existing = {i.code: i for i in db.scalars(
        sa.select(Item).where(Item.code.in_([s.code for s in report.items]))
        .options(selectinload(Item.versions)))}
    for spec in report.items:
        if spec.domain not in domains:
            report.add(spec.row, "domain", f"unknown domain {spec.domain!r}; known: "
                                           f"{', '.join(sorted(domains))}")
        item = existing.get(spec.code)
        if item is not None and item.type != spec.type:
            report.add(spec.row, "type", f"item {spec.code} is {item.type} in the bank; "
                                         "the type of an item cannot change")
        if item is not None and spec.status != item.status \
                and spec.status not in STATUS_FLOW[item.status]:
            report.add(spec.row, "status", f"item {spec.code} cannot go from {item.status} "
                                           f"to {spec.status}")
    if not report.ok:
        raise ImportRejected(report)
    outcome = ImportOutcome([], [], [], [])
    for spec in report.items:
        item = existing.get(spec.code)
        if item is None:
            item = Item(code=spec.code, domain_code=spec.domain, subdomain=spec.subdomain,
                        type=spec.type, status=spec.status, tags=spec.tags,
                        author=spec.author or actor)
            item.versions.append(_version(spec, 1, actor))
            item.status_changes.append(ItemStatusChange(from_status=None,
                                                        to_status=spec.status, by=actor,
                                                        note="imported"))
            db.add(item)
            outcome.created.append(spec.code)
            continue
        item.domain_code, item.subdomain, item.tags = spec.domain, spec.subdomain, spec.tags
        if _content(spec) != _content(item.current):
            item.versions.append(_version(spec, item.current.version + 1, actor))
            outcome.new_versions.append(spec.code)
        else:
            outcome.unchanged.append(spec.code)
        if spec.status != item.status:
            _move(item, spec.status, actor, "imported")
            outcome.status_changed.append(spec.code)
    audit.record(db, actor=actor, action="itembank.import", target=report.source,
                 detail={"created": len(outcome.created),
                         "new_versions": len(outcome.new_versions)})
    db.flush()
    return outcome


def _version(spec: ItemSpec, number: int, actor: str) -> ItemVersion:
    return ItemVersion(version=number, stem_zh=spec.stem_zh, stem_en=spec.stem_en,
                       options=spec.options, key=spec.key, reverse=spec.reverse,
                       media=spec.media, created_by=actor)


def _move(item: Item, to_status: str, actor: str, note: str) -> None:
    item.status_changes.append(ItemStatusChange(from_status=item.status, to_status=to_status,
                                                by=actor, note=note))
    item.status = to_status


def change_status(db: Session, item: Item, to_status: str, actor: str, note: str = "") -> None:
    """Move an item along its life cycle (draft -> pilot -> operational -> retired); audited."""
    if to_status not in STATUS_FLOW.get(item.status, ()):
        raise BankError(f"item {item.code} cannot go from {item.status} to {to_status}")
    from_status = item.status
    _move(item, to_status, actor, note)
    audit.record(db, actor=actor, action="item.status", target=item.code,
                 detail={"from": from_status, "to": to_status, "note": note[:500]})
    db.flush()


def edit_item(db: Session, item: Item, spec: ItemSpec, actor: str) -> ItemVersion:
    """New content is always a new version, so earlier responses keep what was shown.

    The new version goes live at once, so it is audited (unchanged content is no edit)."""
    if _content(spec) == _content(item.current):
        return item.current
    version = _version(spec, item.current.version + 1, actor)
    item.versions.append(version)
    audit.record(db, actor=actor, action="item.edit", target=item.code,
                 detail={"version": version.version, "from_version": version.version - 1})
    db.flush()
    return version


def export_specs(db: Session) -> list[ItemSpec]:
    """Every item's current version as import specifications (export == import format)."""
    items = db.scalars(sa.select(Item).order_by(Item.code)
                       .options(selectinload(Item.versions))).all()
    return [ItemSpec(row=0, code=i.code, domain=i.domain_code, subdomain=i.subdomain,
                     type=i.type, stem_zh=i.current.stem_zh, stem_en=i.current.stem_en,
                     options=list(i.current.options), key=i.current.key,
                     reverse=i.current.reverse, media=i.current.media, tags=list(i.tags),
                     author=i.author, status=i.status) for i in items]


# --- calibrations -------------------------------------------------------------

def get_instrument(db: Session, code: str) -> Instrument:
    instrument = db.scalar(sa.select(Instrument).where(Instrument.code == code))
    if instrument is None:
        known = ", ".join(db.scalars(sa.select(Instrument.code)))
        raise BankError(f"unknown instrument {code!r}; known: {known}")
    return instrument


def import_calibration(db: Session, instrument: Instrument, params: ItemParams, name: str,
                       actor: str, *, fit: Mapping[str, np.ndarray] | None = None,
                       provenance: Mapping[str, Any] | None = None, is_demo: bool = False,
                       levels: list[dict] | None = None, scale_mean: float = 500.0,
                       scale_sd: float = 100.0, link: tuple[float, float] = (1.0, 0.0),
                       notes: str = "") -> Calibration:
    """Store a parameter file as a new calibration version (not yet published).

    Every item of the file must be in the bank; all are reported at once.  The latent
    distribution of ``params`` (``latent_mean``/``latent_sd``) is stored with it: the live
    test uses it as the EAP prior.
    """
    codes = [str(c) for c in params.item_ids]
    items = {i.code: i for i in db.scalars(sa.select(Item).where(Item.code.in_(codes)))}
    missing = [c for c in codes if c not in items]
    if missing:
        raise BankError(f"{len(missing)} item(s) of the calibration are not in the bank: "
                        f"{', '.join(missing[:20])}")
    wrong_type = [c for c in codes
                  if (items[c].type == "rating") != (str(params.model[codes.index(c)])
                                                     in catalogue.POLYTOMOUS)]
    if wrong_type:
        raise BankError("model does not fit the item type (dichotomous models for "
                        f"single-choice items, GRM/GPCM/PCM for rating items): "
                        f"{', '.join(wrong_type[:20])}")
    version = (db.scalar(sa.select(sa.func.max(Calibration.version)).where(
        Calibration.instrument_id == instrument.id, Calibration.name == name)) or 0) + 1
    models = {str(m) for m in params.model}
    calibration = Calibration(
        instrument_id=instrument.id, name=name, version=version,
        model=models.pop() if len(models) == 1 else "mixed", created_by=actor,
        provenance=dict(provenance or {}), is_demo=is_demo,
        levels=levels if levels is not None else default_levels(),
        scale_mean=scale_mean, scale_sd=scale_sd, link_a=link[0], link_b=link[1],
        latent_mean=float(params.latent_mean), latent_sd=float(params.latent_sd),
        notes=notes)
    fit = fit or {}
    for j, code in enumerate(codes):
        k = int(params.n_categories[j]) - 1
        calibration.items.append(CalibrationItem(
            item_id=items[code].id, model=str(params.model[j]), a=float(params.a[j]),
            b=[float(x) for x in params.b[j, :k]], c=float(params.c[j]),
            se_a=_maybe(params.se_a, j), se_b=_maybe_list(params.se_b, j, k),
            se_c=_maybe(params.se_c, j),
            infit=_maybe(fit.get("infit"), j), outfit=_maybe(fit.get("outfit"), j),
            sx2=_maybe(fit.get("sx2"), j), sx2_p=_maybe(fit.get("sx2_p"), j),
            dif_flag=(str(fit["dif"][j]) if "dif" in fit and fit["dif"][j] in ("B", "C")
                      else None)))
    db.add(calibration)
    audit.record(db, actor=actor, action="calibration.import", target=calibration.label,
                 detail={"instrument": instrument.code, "items": len(codes)})
    db.flush()
    return calibration


def _maybe(values: Any, j: int) -> float | None:
    if values is None:
        return None
    v = float(np.asarray(values, dtype=float).reshape(len(values), -1)[j, 0])
    return None if np.isnan(v) else v


def _maybe_list(values: Any, j: int, k: int) -> list | None:
    if values is None:
        return None
    row = np.asarray(values, dtype=float)[j].reshape(-1)[:k]
    return None if np.all(np.isnan(row)) else [None if np.isnan(x) else float(x) for x in row]


def calibration_params(calibration: Calibration) -> ItemParams:
    """The calibration's parameters as scoring's ItemParams, in the stored item order, with
    the calibration's latent distribution."""
    rows = calibration.items
    return ItemParams.from_arrays(
        item_ids=[r.item.code for r in rows], model=[r.model for r in rows],
        a=[r.a for r in rows], b=_pad([r.b for r in rows]), c=[r.c for r in rows],
        n_categories=[len(r.b) + 1 for r in rows],
        se_a=[np.nan if r.se_a is None else r.se_a for r in rows],
        se_b=_pad([[np.nan if x is None else x for x in (r.se_b or [np.nan] * len(r.b))]
                   for r in rows]),
        se_c=[np.nan if r.se_c is None else r.se_c for r in rows],
        latent_mean=calibration.latent_mean, latent_sd=calibration.latent_sd)


def _pad(rows: Sequence[Sequence[float]]) -> np.ndarray:
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def publish(db: Session, calibration: Calibration, actor: str, note: str = "") -> None:
    """Make a calibration the live one for its instrument (one audited action)."""
    instrument = calibration.instrument
    if instrument.published_calibration_id == calibration.id:
        raise BankError(f"{calibration.label} is already published")
    db.add(CalibrationEvent(instrument_id=instrument.id, action="publish",
                            from_calibration_id=instrument.published_calibration_id,
                            to_calibration_id=calibration.id, by=actor, note=note))
    instrument.published_calibration_id = calibration.id
    audit.record(db, actor=actor, action="calibration.publish", target=calibration.label,
                 detail={"instrument": instrument.code})
    db.flush()


def rollback(db: Session, instrument: Instrument, actor: str, note: str = "") -> Calibration:
    """Go back to the calibration that was live before the current one."""
    last = db.scalar(sa.select(CalibrationEvent).where(
        CalibrationEvent.instrument_id == instrument.id,
        CalibrationEvent.to_calibration_id == instrument.published_calibration_id)
        .order_by(CalibrationEvent.id.desc()).limit(1))
    if last is None or last.from_calibration_id is None:
        raise BankError(f"{instrument.code}: there is no earlier published calibration to "
                        "roll back to")
    previous = db.get(Calibration, last.from_calibration_id)
    db.add(CalibrationEvent(instrument_id=instrument.id, action="rollback",
                            from_calibration_id=instrument.published_calibration_id,
                            to_calibration_id=previous.id, by=actor, note=note))
    instrument.published_calibration_id = previous.id
    audit.record(db, actor=actor, action="calibration.rollback", target=previous.label,
                 detail={"instrument": instrument.code})
    db.flush()
    return previous


def published_calibration(db: Session, instrument: Instrument) -> Calibration | None:
    if instrument.published_calibration_id is None:
        return None
    return db.scalar(sa.select(Calibration).where(
        Calibration.id == instrument.published_calibration_id)
        .options(selectinload(Calibration.items).selectinload(CalibrationItem.item)))


# --- responses and exposure ---------------------------------------------------

def record_response(db: Session, *, instrument: Instrument | InstrumentInfo,
                    version: ItemVersion | VersionContent, respondent: str,
                    choice: int | None, campaign: str | None = None,
                    groups: Mapping[str, str] | None = None, scored: bool = True) -> ItemResponse:
    """Store one scored answer against the exact item version shown.

    ``instrument`` needs only ``.id``; ``version`` only ``.id``, ``.item_id`` and
    ``.score(choice)``, so the contract's InstrumentInfo and VersionContent do.
    """
    response = ItemResponse(
        instrument_id=instrument.id, item_version_id=version.id, item_id=version.item_id,
        respondent=respondent, campaign=campaign, groups=dict(groups or {}), choice=choice,
        score=None if choice is None else version.score(choice), scored=scored)
    db.add(response)
    db.flush()
    return response


def forget_respondents(db: Session, respondents: Sequence[str], *,
                       dry_run: bool = False) -> int:
    """Delete every stored answer of these respondent keys (a resident withdrew, or the
    retention purge deletes answers); how many rows (counted only with ``dry_run``)."""
    if not respondents:
        return 0
    where = ItemResponse.respondent.in_(list(respondents))
    count = db.scalar(sa.select(sa.func.count(ItemResponse.id)).where(where)) or 0
    if count and not dry_run:
        db.execute(sa.delete(ItemResponse).where(where))
    return int(count)


def export_responses(db: Session, instrument: Instrument, out: io.TextIOBase | Path,
                     group_columns: Sequence[str] = (), include_pilot: bool = True,
                     *, actor: str = "system", destination: str = "") -> tuple[int, int]:
    """Write the sparse wide RESPONSES.csv that ``learningcity calibrate`` reads.

    One row per respondent (``person_id``), the requested group columns, then one
    column per item code; empty cell = not administered. Returns (persons, items).
    Person-level data leaves the database here, so every export is audited with
    ``actor``, what was asked for, how many rows went out and where (``destination``).
    """
    query = (sa.select(ItemResponse.respondent, Item.code, ItemResponse.score,
                       ItemResponse.groups)
             .join(Item, Item.id == ItemResponse.item_id)
             .where(ItemResponse.instrument_id == instrument.id,
                    ItemResponse.score.is_not(None)))
    if not include_pilot:
        query = query.where(ItemResponse.scored.is_(True))
    persons: dict[str, dict[str, int]] = defaultdict(dict)
    person_groups: dict[str, Mapping[str, str]] = {}
    codes: set[str] = set()
    for respondent, code, score, groups in db.execute(query.order_by(ItemResponse.id)):
        persons[respondent][code] = score
        person_groups[respondent] = groups or {}
        codes.add(code)
    items = sorted(codes)
    close = False
    if isinstance(out, Path):
        out, close = out.open("w", encoding="utf-8", newline=""), True
    writer = csv.writer(out)
    writer.writerow(["person_id", *group_columns, *items])
    for respondent in sorted(persons):
        answers = persons[respondent]
        groups = person_groups[respondent]
        # group values come from residents' background answers: guard them (CSV injection)
        writer.writerow([guard_cell(respondent),
                         *[guard_cell(str(groups.get(g, ""))) for g in group_columns],
                         *[answers.get(code, "") for code in items]])
    if close:
        out.close()
    audit.record(db, actor=actor, action="responses.export", target=instrument.code,
                 detail={"persons": len(persons), "items": len(items),
                         "groups": list(group_columns), "include_pilot": include_pilot,
                         "destination": destination})
    db.flush()
    return len(persons), len(items)


def exposure(db: Session, instrument: Instrument | None = None) -> dict[str, dict[str, Any]]:
    """Per item code: times administered, share of sessions, campaigns it was used in."""
    query = (sa.select(Item.code, sa.func.count(ItemResponse.id),
                       sa.func.count(sa.distinct(ItemResponse.campaign)))
             .join(ItemResponse, ItemResponse.item_id == Item.id).group_by(Item.code))
    sessions_query = sa.select(sa.func.count(sa.distinct(ItemResponse.respondent)))
    if instrument is not None:
        query = query.where(ItemResponse.instrument_id == instrument.id)
        sessions_query = sessions_query.where(ItemResponse.instrument_id == instrument.id)
    sessions = db.scalar(sessions_query) or 0
    campaigns: dict[str, list[str]] = defaultdict(list)
    for code, campaign in db.execute(
            sa.select(Item.code, ItemResponse.campaign).distinct()
            .join(ItemResponse, ItemResponse.item_id == Item.id)
            .where(ItemResponse.campaign.is_not(None))):
        campaigns[code].append(campaign)
    return {code: {"count": count, "rate": count / sessions if sessions else 0.0,
                   "campaigns": sorted(campaigns[code])}
            for code, count, _n in db.execute(query)}


def flagged_for_exposure(exposures: Mapping[str, Mapping[str, Any]], max_rate: float
                         ) -> list[str]:
    return sorted(code for code, e in exposures.items() if e["rate"] > max_rate)


def ensure_domains(db: Session, domains: Iterable[tuple]) -> None:
    """Add missing domains: (code, zh, en, kind, position, advice_zh, advice_en)."""
    for code, zh, en, kind, position, advice_zh, advice_en in domains:
        if db.get(Domain, code) is None:
            db.add(Domain(code=code, name_zh=zh, name_en=en, kind=kind, position=position,
                          advice_zh=advice_zh, advice_en=advice_en))
    db.flush()


# --- contract: what other packages read of the bank -----------------------------
# Plain frozen values, never ORM objects; documented in itembank/README.md ("Contract").

@dataclass(frozen=True)
class InstrumentInfo:
    """An instrument as other packages see it: codes, names, blueprint, live calibration."""

    id: int
    code: str
    name_zh: str
    name_en: str
    kind: str
    item_type: str
    blueprint: dict
    published_calibration_id: int | None

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh

    @property
    def ready(self) -> bool:
        """True when a calibration is published, so residents can take the test."""
        return self.published_calibration_id is not None


def _instrument_info(row: Instrument) -> InstrumentInfo:
    return InstrumentInfo(id=row.id, code=row.code, name_zh=row.name_zh, name_en=row.name_en,
                          kind=row.kind, item_type=row.item_type,
                          blueprint=dict(row.blueprint or {}),
                          published_calibration_id=row.published_calibration_id)


def instrument_info(db: Session, code: str) -> InstrumentInfo | None:
    """The instrument with this code, or None when there is none."""
    row = db.scalar(sa.select(Instrument).where(Instrument.code == code))
    return None if row is None else _instrument_info(row)


def instrument_info_by_id(db: Session, instrument_id: int) -> InstrumentInfo | None:
    """The instrument with this database id (as stored on sessions and responses), or None."""
    row = db.get(Instrument, instrument_id)
    return None if row is None else _instrument_info(row)


def instrument_codes(db: Session, *, kind: str | None = None,
                     published_only: bool = False) -> list[str]:
    """Instrument codes in code order, optionally of one kind and with a live calibration."""
    query = sa.select(Instrument.code).order_by(Instrument.code)
    if kind is not None:
        query = query.where(Instrument.kind == kind)
    if published_only:
        query = query.where(Instrument.published_calibration_id.is_not(None))
    return list(db.scalars(query))


def version_contents(db: Session, version_ids: Iterable[int]) -> dict[int, VersionContent]:
    """Item version id -> its content (text, options, scoring), for many versions in one query.

    Unknown ids are left out. Versions never change once stored, so callers may cache them.
    """
    wanted = sorted({int(v) for v in version_ids})
    if not wanted:
        return {}
    rows = db.execute(sa.select(ItemVersion, Item.code, Item.type)
                      .join(Item, Item.id == ItemVersion.item_id)
                      .where(ItemVersion.id.in_(wanted))).all()
    return {v.id: _version_content(v, code, type_) for v, code, type_ in rows}


def _version_content(v: ItemVersion, code: str, type_: str) -> VersionContent:
    return VersionContent(id=v.id, item_id=v.item_id, item_code=code, item_type=type_,
                          version=v.version, stem_zh=v.stem_zh, stem_en=v.stem_en,
                          options=tuple(dict(o) for o in v.options), key=v.key,
                          reverse=bool(v.reverse), media=v.media)


def version_item_ids(db: Session, version_ids: Iterable[int]) -> dict[int, int]:
    """Item version id -> the id of its item (to put answers into calibration columns)."""
    wanted = sorted({int(v) for v in version_ids})
    if not wanted:
        return {}
    return {version_id: item_id for version_id, item_id in db.execute(
        sa.select(ItemVersion.id, ItemVersion.item_id).where(ItemVersion.id.in_(wanted)))}


def current_contents(db: Session, *, item_type: str | None = None,
                     status: Sequence[str] | None = None) -> dict[str, VersionContent]:
    """Item code -> the content of its current (latest) version, in code order.

    ``item_type`` ("single_choice" or "rating") and ``status`` narrow the items;
    the survey checker reads the rating items this way.
    """
    latest = (sa.select(ItemVersion.item_id, sa.func.max(ItemVersion.version).label("n"))
              .group_by(ItemVersion.item_id).subquery())
    query = (sa.select(ItemVersion, Item.code, Item.type)
             .join(Item, Item.id == ItemVersion.item_id)
             .join(latest, sa.and_(latest.c.item_id == ItemVersion.item_id,
                                   latest.c.n == ItemVersion.version))
             .order_by(Item.code))
    if item_type is not None:
        query = query.where(Item.type == item_type)
    if status is not None:
        query = query.where(Item.status.in_(list(status)))
    return {code: _version_content(v, code, type_) for v, code, type_ in db.execute(query)}


@dataclass(frozen=True)
class BankItem:
    """An item's identity and life-cycle status with the id of its current version."""

    item_id: int
    code: str
    domain_code: str
    type: str
    status: str
    current_version_id: int


def _bank_items(db: Session, where: Any, order: Any) -> list[BankItem]:
    latest = (sa.select(ItemVersion.item_id, sa.func.max(ItemVersion.version).label("n"))
              .group_by(ItemVersion.item_id).subquery())
    query = (sa.select(Item.id, Item.code, Item.domain_code, Item.type, Item.status,
                       ItemVersion.id)
             .join(latest, latest.c.item_id == Item.id)
             .join(ItemVersion, sa.and_(ItemVersion.item_id == Item.id,
                                        ItemVersion.version == latest.c.n))
             .where(where).order_by(order))
    return [BankItem(*row) for row in db.execute(query)]


def pilot_items(db: Session, item_type: str, *, exclude: Iterable[int] = ()) -> list[BankItem]:
    """Pilot items of one type in code order, leaving out the given item ids (calibrated ones)."""
    excluded = list({int(i) for i in exclude})
    where = sa.and_(Item.status == "pilot", Item.type == item_type,
                    Item.id.not_in(excluded) if excluded else sa.true())
    return _bank_items(db, where, Item.code)


def bank_revision(db: Session) -> tuple[int, int]:
    """A pair that changes whenever an item changes status or gets a new version.

    Two cheap maxima in one round trip: key a per-worker cache of bank content on it.
    """
    row = db.execute(sa.select(
        sa.select(sa.func.max(ItemStatusChange.id)).scalar_subquery(),
        sa.select(sa.func.max(ItemVersion.id)).scalar_subquery())).one()
    return (row[0] or 0, row[1] or 0)


@dataclass(frozen=True)
class CalibrationInfo:
    """A stored calibration: its parameters for scoring, the reporting scale and levels.

    ``items`` and ``params`` are in the same order (row ``j`` of ``params`` is ``items[j]``).
    """

    id: int
    instrument_id: int
    name: str
    version: int
    model: str
    is_demo: bool
    scale_mean: float
    scale_sd: float
    link_a: float
    link_b: float
    #: [{"min", "code", "label_zh", "label_en", "cando_zh", "cando_en"}], lowest first
    levels: tuple[dict, ...]
    items: tuple[BankItem, ...]
    params: ItemParams

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def to_scale(self, theta: np.ndarray | float) -> np.ndarray | float:
        """Reporting-scale score of theta (this calibration's mean, SD and link)."""
        return to_scale(theta, self.scale_mean, self.scale_sd, self.link_a, self.link_b)

    def se_to_scale(self, se: np.ndarray | float) -> np.ndarray | float:
        """A theta standard error on the reporting scale."""
        return se_to_scale(se, self.scale_sd, self.link_a)

    def level_for(self, score: float) -> dict:
        """The proficiency level a reporting-scale score reaches."""
        return level_for(score, self.levels)


def calibration_info(db: Session, calibration_id: int) -> CalibrationInfo | None:
    """The calibration with this id (parameters, scale, levels, items), or None."""
    calibration = db.scalar(
        sa.select(Calibration).where(Calibration.id == calibration_id)
        .options(selectinload(Calibration.items).selectinload(CalibrationItem.item)))
    if calibration is None:
        return None
    bank = {b.item_id: b for b in _bank_items(
        db, Item.id.in_([r.item_id for r in calibration.items]), Item.id)}
    return CalibrationInfo(
        id=calibration.id, instrument_id=calibration.instrument_id, name=calibration.name,
        version=calibration.version, model=calibration.model,
        is_demo=bool(calibration.is_demo), scale_mean=float(calibration.scale_mean),
        scale_sd=float(calibration.scale_sd), link_a=float(calibration.link_a),
        link_b=float(calibration.link_b),
        levels=tuple(dict(lv) for lv in (calibration.levels or [])),
        items=tuple(bank[r.item_id] for r in calibration.items),
        params=calibration_params(calibration))


def published_calibration_id(db: Session, instrument_code: str) -> int | None:
    """The id of an instrument's live calibration, or None (a cheap question, so callers
    can cache :func:`calibration_info` by it)."""
    return db.scalar(sa.select(Instrument.published_calibration_id)
                     .where(Instrument.code == instrument_code))


def published_calibration_info(db: Session, instrument_code: str) -> CalibrationInfo | None:
    """The live calibration of an instrument, or None (unknown instrument, none published)."""
    calibration_id = published_calibration_id(db, instrument_code)
    return None if calibration_id is None else calibration_info(db, calibration_id)


@dataclass(frozen=True)
class DomainInfo:
    """A content area with its names and the advice shown to residents weak in it."""

    code: str
    name_zh: str
    name_en: str
    kind: str
    position: int
    advice_zh: str
    advice_en: str

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh

    def advice(self, locale: str) -> str:
        return self.advice_en if locale.startswith("en") else self.advice_zh


def domain_infos(db: Session) -> dict[str, DomainInfo]:
    """Domain code -> its names and advice, in display order."""
    rows = db.scalars(sa.select(Domain).order_by(Domain.position, Domain.code))
    return {d.code: DomainInfo(code=d.code, name_zh=d.name_zh, name_en=d.name_en, kind=d.kind,
                               position=d.position, advice_zh=d.advice_zh or "",
                               advice_en=d.advice_en or "") for d in rows}


# --- contract used by assessment
# The answer hot path reads the bank's revision and an instrument's blueprint in the
# same round trip as its own session row, and writes the response row without the ORM
# unit of work (added by assessment; see assessment/README.md, "What assessment reads").

def bank_revision_columns() -> tuple[Any, Any]:
    """The two maxima of :func:`bank_revision` as scalar subqueries (put them in your own
    SELECT; ``None`` there means 0)."""
    return (sa.select(sa.func.max(ItemStatusChange.id)).scalar_subquery(),
            sa.select(sa.func.max(ItemVersion.id)).scalar_subquery())


def instrument_blueprint_column(instrument_id: Any) -> Any:
    """The blueprint (a dict) of the instrument whose id is ``instrument_id``, a column of
    the caller's SELECT, as a scalar subquery."""
    return (sa.select(Instrument.blueprint).where(Instrument.id == instrument_id)
            .scalar_subquery())


_INSERT_RESPONSE = ItemResponse.__table__.insert()


def add_response(db: Session, *, instrument_id: int, version: VersionContent, respondent: str,
                 choice: int | None, campaign: str | None = None,
                 groups: Mapping[str, str] | None = None, scored: bool = True) -> None:
    """:func:`record_response` as one plain INSERT in the session's transaction, without
    an ORM object or a flush (a third of the time; the answer hot path writes its own rows
    beside it).

    It is committed with the request: every session joined to a request's transaction
    commits unless the request fails (``learningcity.db.tm_session``).
    """
    db.execute(_INSERT_RESPONSE, {
        "instrument_id": instrument_id, "item_version_id": version.id,
        "item_id": version.item_id, "respondent": respondent, "campaign": campaign,
        "groups": dict(groups or {}), "choice": choice,
        "score": None if choice is None else version.score(choice), "scored": scored})
