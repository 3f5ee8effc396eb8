"""Population margins for post-stratification and raking: upload, check, list, activate.

A margin file (CSV, UTF-8 or GBK, or XLSX, first sheet) has one column per variable and
a ``population`` column, one row per cell, e.g.::

    district,age_band,sex,population
    D01,18-29,female,41200

Variables and their codes are those residents answer (the default survey and the test's
background questions): ``district`` (a district code of the database), ``age_band``,
``sex``, ``occupation``, ``education`` (codes of ``assessment/background.py``, the same
as the default survey's). Every problem is listed with its row (header = row 1) and
column: unknown columns or codes, duplicate cells, missing, non-numeric or negative
counts; a file with any problem changes nothing. A new upload is active; the weighting
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
from monitoring.fieldwork.frames import FrameError, Problem, clean_name, read_table
from monitoring.results.models import PopulationCell, PopulationMargin

POPULATION_COLUMN = "population"
VARIABLES = ("district", "age_band", "sex", "occupation", "education")
MAX_ROWS = 100_000


class MarginError(FrameError):
    """The margin file was refused; ``problems`` lists every reason, nothing was stored."""


def known_codes(db: Session) -> dict[str, set[str]]:
    """The valid codes of every margin variable."""
    codes = {name: {code for code, _label in CHOICES[name][1]}
             for name in VARIABLES if name in CHOICES}
    codes["district"] = set(district_codes(db))
    return codes


def check_margin(db: Session, filename: str, data: bytes
                 ) -> tuple[list[str], list[tuple[dict[str, str], float]]]:
    """Read and check a margin file: (variables, [(cell values, population), ...]).

    Raises :class:`MarginError` listing every problem found.
    """
    try:
        table = read_table(filename, data, max_rows=MAX_ROWS)
    except FrameError as exc:
        raise MarginError(filename, exc.problems) from None
    problems: list[Problem] = []
    columns = [c.strip() for c in table.columns]
    lowered = [c.lower() for c in columns]
    for k, name in enumerate(lowered):
        if name and lowered.index(name) != k:
            problems.append(Problem(1, columns[k], "column appears twice"))
    if POPULATION_COLUMN not in lowered:
        problems.append(Problem(1, None, f"no {POPULATION_COLUMN!r} column (the population "
                                         "count of each cell)"))
    variables = [c for c in lowered if c in VARIABLES]
    for k, name in enumerate(lowered):
        if name and name != POPULATION_COLUMN and name not in VARIABLES:
            problems.append(Problem(1, columns[k], "unknown column; use "
                                    f"{', '.join(VARIABLES)} and {POPULATION_COLUMN}"))
    if not variables:
        problems.append(Problem(1, None, "no variable column (district, age_band, sex...)"))
    if problems:
        raise MarginError(filename, problems)
    codes = known_codes(db)
    index = {name: lowered.index(name) for name in [*variables, POPULATION_COLUMN]}
    cells: list[tuple[dict[str, str], float]] = []
    seen: dict[tuple[str, ...], int] = {}
    for offset, row in enumerate(table.rows):
        number = offset + 2
        if not row:
            continue
        if len(table.rows) > MAX_ROWS and offset >= MAX_ROWS:
            problems.append(Problem(number, None, f"more than {MAX_ROWS} rows"))
            break

        def get(name: str, row: list[str] = row) -> str:
            return row[index[name]].strip() if index[name] < len(row) else ""

        values: dict[str, str] = {}
        for name in variables:
            value = get(name)
            if not value:
                problems.append(Problem(number, name, "empty"))
            elif value not in codes[name]:
                shown = ", ".join(sorted(codes[name])[:12])
                problems.append(Problem(number, name, f"unknown {name} code {value!r} "
                                                      f"(known: {shown})"))
            values[name] = value
        raw = get(POPULATION_COLUMN).replace(",", "").replace(" ", "")
        try:
            population = float(raw)
        except ValueError:
            problems.append(Problem(number, POPULATION_COLUMN,
                                    f"{raw!r} is not a number" if raw else "empty"))
            population = math.nan
        else:
            if not math.isfinite(population) or population < 0:
                problems.append(Problem(number, POPULATION_COLUMN,
                                        f"{raw!r} is not a non-negative count"))
        key = tuple(values.get(name, "") for name in variables)
        if key in seen and all(key):
            problems.append(Problem(number, None, f"duplicate cell {dict(zip(variables, key))} "
                                                  f"(also row {seen[key]})"))
        seen.setdefault(key, number)
        cells.append((values, population))
    if not cells and not problems:
        problems.append(Problem(None, None, "the file has no data rows"))
    if problems:
        raise MarginError(filename, problems)
    return variables, cells


def upload_margin(db: Session, filename: str, data: bytes, *, name: str, user: str,
                  reference_year: int | None = None, source: str = "") -> PopulationMargin:
    """Check and store a margin (all or nothing); the new margin is active."""
    name = clean_name(name or "").strip()
    if not name or len(name) > 200:
        raise MarginError(filename, [Problem(None, None, "a name of 1 to 200 characters "
                                                         "is needed")])
    if reference_year is not None and not 1900 <= reference_year <= 2200:
        raise MarginError(filename, [Problem(None, None, f"reference year {reference_year} "
                                                         "is not plausible")])
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
