"""Downloads of the monitoring tables: CSV, XLSX and SPSS .sav through the project's
export registry (:mod:`tabular.writing`), the same columns and names in every format."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from learningcity.i18n import _
from learningcity.people import CHOICES, GROUP_LABELS
from monitoring.results.dashboard import JUDGEMENT_LABELS, REASON_LABELS, Column, Table
from tabular.writing import SPSS_RESERVED, Sheet, media_type, write_table, write_workbook

#: download format -> media type (tabular's export registry); ``codebook`` is the
#: companion CSV of a CSV download (variable labels, codes and their labels)
EXPORT_FORMATS = {**{fmt: media_type(fmt) for fmt in ("csv", "xlsx", "sav")},
                  "codebook": media_type("csv")}
_NUMBER_KINDS = ("value", "share", "number", "int")
_CODE_KINDS = ("group", "judgement", "reason")
#: the codebook's columns (the XLSX sheet ``codebook`` and the companion CSV)
CODEBOOK_COLUMNS = ("variable", "label", "type", "value", "value_label")
CODEBOOK_SHEET = "codebook"
#: SPSS print format of estimates, SEs, intervals and design effects
SAV_ESTIMATE_FORMAT = "F10.4"
#: text widths of the monitoring schema (monitoring.results.warehouse.Aggregate)
_SCHEMA_WIDTHS = {"district": 32, "group": 120, "campaign": 64}
#: value labels of ``suppressed`` (zh, en)
_SUPPRESSED = {0: ("公布", "published"), 1: ("不公布", "suppressed")}


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
    the export registry (:func:`tabular.writing.write_table`); ``codebook`` gives the
    companion codebook CSV of a CSV download (:func:`codebook_frame`).

    Every format has one header row, the variable names (:func:`_variable_names`), so
    R and pandas read numbers as numbers; the labels in the download's language are in
    the XLSX's ``codebook`` sheet, the companion codebook CSV, and the SAV's variable and
    value labels. Codes (groups, districts, reasons, judgements) stay codes in every
    format; SAV labels each of them. Suppressed cells are empty in every format (they are
    NULL in the database). ``district_names`` (code -> name in the download's language)
    adds a ``district_name`` column next to the district code.
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
    values = _value_labels(cols, names, rows, translate, district_names or {})
    codebook = codebook_frame(cols, names, labels, values)
    if fmt == "codebook":
        return write_table("csv", codebook)
    if fmt == "xlsx":
        return write_workbook([
            Sheet(t.name, frame),
            Sheet(CODEBOOK_SHEET, codebook, column_widths={"label": 40, "value_label": 40})])
    if fmt == "sav":
        return write_table("sav", frame, variable_labels=labels, value_labels=values,
                           measures=_measures(cols, names), formats=_formats(cols, names),
                           string_widths=_string_widths(cols, names, rows))
    return write_table(fmt, frame, sheet_name=t.name)


def download(name: str, t: Table, fmt: str, translate: Callable[[Any], str] = str,
             district_names: Mapping[str, str] | None = None) -> tuple[bytes, str, str]:
    """A page's download: (body, media type, file name) of table ``name`` in ``fmt``
    (``codebook``: the labels of the CSV download, as ``monitoring-<name>-codebook.csv``)."""
    if fmt == "codebook":
        return (export(t, fmt, translate, district_names), EXPORT_FORMATS[fmt],
                f"monitoring-{name}-codebook.csv")
    return (export(t, fmt, translate, district_names), EXPORT_FORMATS[fmt],
            f"monitoring-{name}.{fmt}")


def codebook_frame(cols: Sequence[Column], names: Sequence[str], labels: Mapping[str, str],
                   values: Mapping[str, Mapping[Any, str]]) -> pd.DataFrame:
    """The codebook: one row per variable (name, label, type), then one row per code of
    it (value, value label), in the download's language."""
    out: list[list[Any]] = []
    for c, name in zip(cols, names, strict=True):
        out.append([name, labels.get(name, name), _codebook_type(c), "", ""])
        for code, text in (values.get(name) or {}).items():
            out.append([name, "", "", str(code), text])
    return pd.DataFrame(out, columns=list(CODEBOOK_COLUMNS), dtype=object)


def _codebook_type(c: Column) -> str:
    if c.kind == "int" or c.key == "suppressed":
        return "integer"
    if c.kind in _NUMBER_KINDS:
        return "number"
    if c.kind == "date":
        return "date (YYYY-MM-DD)"
    if c.kind in _CODE_KINDS or c.key == "district":
        return "code"
    return "text"


def _english(translate: Callable[[Any], str]) -> bool:
    """Whether ``translate`` gives English (the catalogs translate into Chinese only)."""
    return translate(_("Suppressed")) == "Suppressed"


def _value_labels(cols: Sequence[Column], names: Sequence[str], rows: Sequence[dict],
                  translate: Callable[[Any], str], district_names: Mapping[str, str]
                  ) -> dict[str, dict[Any, str]]:
    """Every code column's labels in the download's language: groups (population groups,
    sexes, age bands, the rows' districts), districts, suppression reasons, judgements,
    and the 0/1 of ``suppressed``. Codes in the rows that no list knows are labelled by
    themselves."""
    ages = {code: translate(text) for code, text in CHOICES["age_band"][1]}
    # districts of the table's rows only: a district's download names no other district
    seen = {str(r.get(k)) for r in rows for k in ("district", "group") if r.get(k)}
    districts = {code: name for code, name in district_names.items() if code in seen}
    groups = {**{k: translate(v) for k, v in GROUP_LABELS.items()}, **ages, **districts}
    english = _english(translate)
    out: dict[str, dict[Any, str]] = {}
    for c, name in zip(cols, names, strict=True):
        if c.key == "suppressed":
            out[name] = {code: texts[1 if english else 0]
                         for code, texts in _SUPPRESSED.items()}
            continue
        if c.kind == "judgement":
            known = {k: translate(v) for k, v in JUDGEMENT_LABELS.items()}
        elif c.kind == "reason":
            known = {k: translate(v) for k, v in REASON_LABELS.items()}
        elif c.kind == "group":
            known = dict(groups)
        elif c.key == "district":
            known = dict(districts)
        else:
            continue
        present = sorted({str(r.get(c.key)) for r in rows if r.get(c.key)} - set(known))
        known.update({code: code for code in present})
        out[name] = known
    return out


def _measures(cols: Sequence[Column], names: Sequence[str]) -> dict[str, str]:
    return {name: "scale" if c.kind in _NUMBER_KINDS and c.key != "suppressed"
            else "nominal" for c, name in zip(cols, names, strict=True)}


def _formats(cols: Sequence[Column], names: Sequence[str]) -> dict[str, str]:
    """Print formats: counts and flags whole, estimates with four decimals (an SE of
    0.0796 shows as 0.0796; the file stores every digit)."""
    out = {}
    for c, name in zip(cols, names, strict=True):
        if c.key == "suppressed":
            out[name] = "F1.0"
        elif c.kind == "int":
            out[name] = "F8.0"
        elif c.kind in _NUMBER_KINDS:
            out[name] = SAV_ESTIMATE_FORMAT
    return out


def _string_widths(cols: Sequence[Column], names: Sequence[str], rows: Sequence[dict]
                   ) -> dict[str, int]:
    """Storage widths of the code columns from the monitoring schema (district 32
    characters, group 120), so every download of a table has the same widths."""
    out = {}
    for c, name in zip(cols, names, strict=True):
        if c.key in _SCHEMA_WIDTHS:
            out[name] = _SCHEMA_WIDTHS[c.key]
        elif c.kind in ("judgement", "reason"):
            out[name] = 32
    return out


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
