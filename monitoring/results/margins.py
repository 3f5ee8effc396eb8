"""Population margins for post-stratification and raking: upload, check, list, activate.

A margin file (CSV, UTF-8 or GBK, or XLSX, first sheet; read with :mod:`tabular.reading`)
has one column per variable and a ``population`` column, one row per cell, e.g.::

    district,age_band,sex,population
    D01,18-29,female,41200

Variables and their codes are those residents answer (the default survey and the test's
background questions): ``district`` (a district code of the database), ``age_band``,
``sex``, ``occupation``, ``education`` (codes of ``assessment/background.py``, the same
as the default survey's). Every problem is listed with its file, sheet, row (header =
row 1) and column, in one :class:`MarginError` (tabular's error type): unknown columns
or codes, duplicate cells, missing, non-numeric or negative counts; a file with any
problem changes nothing. A new upload is active; the weighting
uses the most recent active margin unless told otherwise.

Command line: ``learningcity margins upload FILE --name NAME [--year Y] [--source S]``,
``learningcity margins list``, ``learningcity margins activate ID [--off]``, and
``learningcity margins weigh CAMPAIGN [--margin ID] [--method poststratify|rake]
[--trim MULTIPLE] [--no-collapse]`` to (re)compute a campaign's weights with them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.districts import district_codes
from learningcity.people import CHOICES
from monitoring.fieldwork.frames import FrameError, clean_name
from monitoring.results.models import PopulationCell, PopulationMargin
from tabular import reading
from tabular.reading import Problem, Table, TableError

POPULATION_COLUMN = "population"
VARIABLES = ("district", "age_band", "sex", "occupation", "education")
MAX_ROWS = 100_000


class MarginError(FrameError):
    """The margin file was refused; ``problems`` (file, sheet, row, column, message) lists
    every reason, nothing was stored."""


def known_codes(db: Session) -> dict[str, set[str]]:
    """The valid codes of every margin variable."""
    codes = {name: {code for code, _label in CHOICES[name][1]}
             for name in VARIABLES if name in CHOICES}
    codes["district"] = set(district_codes(db))
    return codes


def _columns(table: Table) -> list[str]:
    """The variables of the file (lower case), after checking its header; MarginError
    lists every header problem. Empty column names are ignored."""
    problems = table.problems()
    line = table.header_row
    lowered = [c.lower() for c in table.header]
    for k, name in enumerate(lowered):
        if name and lowered.index(name) != k:
            problems.add(line, table.header[k], "column appears twice")
    if POPULATION_COLUMN not in lowered:
        problems.add(line, None, f"no {POPULATION_COLUMN!r} column (the population count of "
                                 "each cell)")
    for k, name in enumerate(lowered):
        if name and name != POPULATION_COLUMN and name not in VARIABLES:
            problems.add(line, table.header[k], "unknown column; use "
                                                f"{', '.join(VARIABLES)} and {POPULATION_COLUMN}")
    variables = [c for c in lowered if c in VARIABLES]
    if not variables:
        problems.add(line, None, "no variable column (district, age_band, sex...)")
    if problems:
        raise MarginError.of(problems)
    return variables


def check_margin(db: Session, filename: str, data: bytes
                 ) -> tuple[list[str], list[tuple[dict[str, str], float]]]:
    """Read and check a margin file: (variables, [(cell values, population), ...]).

    Raises :class:`MarginError` listing every problem found.
    """
    try:
        table = reading.read_table(data, filename, max_rows=MAX_ROWS, check_header=False)
    except TableError as exc:
        raise MarginError.of(exc) from None
    variables = _columns(table)
    lowered = [c.lower() for c in table.header]
    codes = known_codes(db)
    index = {name: lowered.index(name) for name in [*variables, POPULATION_COLUMN]}
    problems = table.problems()
    cells: list[tuple[dict[str, str], float]] = []
    seen: dict[tuple[str, ...], int] = {}
    for row in table.rows:
        number = row.number
        values: dict[str, str] = {}
        for name in variables:
            value = row.values[index[name]]
            if not value:
                problems.add(number, name, "empty")
            elif value not in codes[name]:
                shown = ", ".join(sorted(codes[name])[:12])
                problems.add(number, name, f"unknown {name} code {value!r} (known: {shown})")
            values[name] = value
        raw = row.values[index[POPULATION_COLUMN]].replace(",", "").replace(" ", "")
        try:
            population = float(raw)
        except ValueError:
            problems.add(number, POPULATION_COLUMN,
                         f"{raw!r} is not a number" if raw else "empty")
            population = math.nan
        else:
            if not math.isfinite(population) or population < 0:
                problems.add(number, POPULATION_COLUMN, f"{raw!r} is not a non-negative count")
        key = tuple(values.get(name, "") for name in variables)
        if key in seen and all(key):
            problems.add(number, None, f"duplicate cell {dict(zip(variables, key))} "
                                       f"(also row {seen[key]})")
        seen.setdefault(key, number)
        cells.append((values, population))
    if not cells and not problems:
        problems.add(None, None, "the file has no data rows")
    if problems:
        raise MarginError.of(problems)
    return variables, cells


def upload_margin(db: Session, filename: str, data: bytes, *, name: str, user: str,
                  reference_year: int | None = None, source: str = "") -> PopulationMargin:
    """Check and store a margin (all or nothing); the new margin is active."""
    name = clean_name(name or "").strip()
    if not name or len(name) > 200:
        raise MarginError([Problem(filename, None, None, None,
                                   "a name of 1 to 200 characters is needed")])
    if reference_year is not None and not 1900 <= reference_year <= 2200:
        raise MarginError([Problem(filename, None, None, None,
                                   f"reference year {reference_year} is not plausible")])
    variables, cells = check_margin(db, filename, data)
    margin = PopulationMargin(name=name, variables=variables, reference_year=reference_year,
                              source=clean_name(source or filename)[:500], active=True,
                              uploaded_by=user)
    margin.cells = [PopulationCell(values=values, population=population)
                    for values, population in cells]
    db.add(margin)
    db.flush()
    audit.record(db, actor=user, action="margin.upload", target=name,
                     detail={"id": margin.id, "variables": variables, "cells": len(cells),
                             "file": filename})
    db.flush()
    return margin


def list_margins(db: Session) -> Sequence[PopulationMargin]:
    return db.scalars(sa.select(PopulationMargin).order_by(
        PopulationMargin.uploaded_at.desc(), PopulationMargin.id.desc())).all()


def set_active(db: Session, margin_id: int, active: bool, user: str) -> PopulationMargin:
    margin = db.get(PopulationMargin, margin_id)
    if margin is None:
        raise ValueError(f"no population margin with id {margin_id}")
    margin.active = active
    audit.record(db, actor=user, action="margin.activate" if active else "margin.deactivate",
                     target=margin.name, detail={"id": margin.id})
    db.flush()
    return margin


def margin_total(margin: PopulationMargin) -> float:
    return float(sum(c.population for c in margin.cells))
