"""Downloads of the monitoring tables: CSV, XLSX and SPSS .sav through the project's
export registry (:mod:`tabular.writing`), the same columns and names in every format."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from learningcity.i18n import _
from monitoring.results.dashboard import Column, Table
from tabular.writing import SPSS_RESERVED, media_type, write_table

#: download format -> media type (tabular's export registry)
EXPORT_FORMATS = {fmt: media_type(fmt) for fmt in ("csv", "xlsx", "sav")}
_NUMBER_KINDS = ("value", "share", "number", "int")


def _export_columns(t: Table, with_names: bool = False) -> list[Column]:
    cols = list(t.columns)
    keys = {c.key for c in cols}
    if with_names and "district" in keys:  # the name beside the code (codes stay)
        cols.insert([c.key for c in cols].index("district") + 1,
                    Column("district_name", _("District name")))
    if t.rows and "se" in t.rows[0] and "se" not in keys:
        cols.insert([c.key for c in cols].index("estimate") + 1 if "estimate" in keys
                    else len(cols), Column("se", _("SE"), "value"))
    if t.rows and "suppressed" in t.rows[0]:
        cols.append(Column("suppressed", _("Suppressed"), "int"))
    return cols


def _raw(row: dict[str, Any], col: Column) -> Any:
    v = row.get(col.key)
    if col.key == "suppressed":
        return int(bool(v))
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def export(t: Table, fmt: str, translate: Callable[[Any], str] = str,
           district_names: Mapping[str, str] | None = None) -> bytes:
    """The table as CSV (UTF-8 with BOM, formula-guarded), XLSX or SPSS .sav bytes, through
    the export registry (:func:`tabular.writing.write_table`).

    Every format has the variable names (:func:`_variable_names`) and their labels in the
    download's language: a second header row in CSV and XLSX, variable labels in SAV.
    Suppressed cells are empty in every format (they are NULL in the database).
    ``district_names`` (code -> name in the download's language) adds a
    ``district_name`` column next to the district code.
    """
    cols = _export_columns(t, with_names=district_names is not None)
    names = _variable_names([c.key for c in cols])
    rows = t.rows if district_names is None else [
        {**r, "district_name": district_names.get(r.get("district") or "",
                                                  r.get("district") or "")}
        for r in t.rows]
    frame = pd.DataFrame({name: _series(c, [_raw(r, c) for r in rows])
                          for c, name in zip(cols, names, strict=True)}, columns=names)
    labels = {name: translate(c.label) for c, name in zip(cols, names, strict=True)}
    return write_table(fmt, frame, variable_labels=labels, label_row=True,
                       sheet_name=t.name)


def download(name: str, t: Table, fmt: str, translate: Callable[[Any], str] = str,
             district_names: Mapping[str, str] | None = None) -> tuple[bytes, str, str]:
    """A page's download: (body, media type, file name) of table ``name`` in ``fmt``."""
    return (export(t, fmt, translate, district_names), EXPORT_FORMATS[fmt],
            f"monitoring-{name}.{fmt}")


def _series(col: Column, values: list[Any]) -> pd.Series:
    """A column's values typed for every format: whole numbers, numbers, or text."""
    if col.kind not in _NUMBER_KINDS:
        return pd.Series([None if v is None else str(v) for v in values], dtype=object)
    numbers = [None if v is None else float(v) for v in values]
    if col.kind == "int" and all(v is None or v.is_integer() for v in numbers):
        return pd.Series([None if v is None else int(v) for v in numbers], dtype="Int64")
    return pd.Series(numbers, dtype="float64")


def _variable_names(keys: Sequence[str]) -> list[str]:
    """SPSS-safe, unique variable names (letters, digits, _; at most 64 bytes; no SPSS
    reserved word), the same in every format's header."""
    out: list[str] = []
    for k in keys:
        base = re.sub(r"[^A-Za-z0-9_]", "_", k) or "v"
        if not base[0].isalpha():
            base = "v" + base
        base = base[:60]
        if base.upper() in SPSS_RESERVED:
            base += "_x"
        name, i = base, 1
        while name.lower() in {o.lower() for o in out}:
            i += 1
            name = f"{base[:56]}_{i}"
        out.append(name)
    return out
