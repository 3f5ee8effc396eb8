"""A survey definition written as an XLSForm workbook (``learningcity survey
export-xlsform``), which :func:`surveys.xlsform.read_xlsform` reads back as the same survey.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tabular.writing import Sheet, write_workbook

from .definition import CHOICE_TYPES, Survey, Text
from .xlsform import CHOICES_COLUMNS, SETTINGS_COLUMNS, SURVEY_COLUMNS

__all__ = ["write_xlsform", "xlsform_bytes"]



def _survey_rows(survey: Survey) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def text(row: dict[str, Any], base: str, value: Text | None) -> None:
        if value is not None:
            row[f"{base}::zh"], row[f"{base}::en"] = value.zh, value.en

    for page in survey.pages:
        row: dict[str, Any] = {"type": "begin_group", "name": page.name,
                               "relevant": page.relevant}
        text(row, "label", page.title)
        rows.append(row)
        for q in page.questions:
            row = {"name": q.name, "required": "yes" if q.required else None,
                   "relevant": q.relevant, "constraint": q.constraint}
            text(row, "label", q.label)
            text(row, "hint", q.hint)
            text(row, "constraint_message", q.constraint_message)
            if q.type == "rating_grid":
                row["type"] = f"begin_rating {q.choices}"
                rows.append(row)
                for item in q.items:
                    irow: dict[str, Any] = {"type": "rating", "name": item.name,
                                            "item_code": item.item_code,
                                            "reverse": "true" if item.reverse else None}
                    text(irow, "label", item.label)
                    rows.append(irow)
                rows.append({"type": "end_rating"})
                continue
            if q.type in CHOICE_TYPES:
                kind = "select_one" if q.type == "single_choice" else "select_multiple"
                row["type"] = f"{kind} {q.choices}" + (" or_other" if q.other else "")
            else:
                row["type"] = q.type
            bounds = [f"{k}={v}" for k, v in (("min", q.minimum), ("max", q.maximum))
                      if v is not None]
            row["parameters"] = " ".join(bounds) or None
            rows.append(row)
        rows.append({"type": "end_group"})
    return rows


def write_xlsform(survey: Survey, path: str | Path) -> None:
    """Write a definition as an XLSForm-like workbook that :func:`read_xlsform` reads back."""
    Path(path).write_bytes(xlsform_bytes(survey))


def xlsform_bytes(survey: Survey) -> bytes:
    """The XLSForm-like workbook of a definition (text cells are text, never formulas)."""
    sheets = [
        ("survey", SURVEY_COLUMNS, _survey_rows(survey)),
        ("choices", CHOICES_COLUMNS, [
            {"list_name": name, "name": c.name, "label::zh": c.label.zh,
             "label::en": c.label.en}
            for name, choices in survey.choice_lists.items() for c in choices]),
        ("settings", SETTINGS_COLUMNS, [
            {"form_id": survey.id, "version": survey.version, "title::zh": survey.title.zh,
             "title::en": survey.title.en}]),
    ]
    widths = {"type": 26, "name": 20, "label::zh": 48, "label::en": 48, "hint::zh": 30,
              "hint::en": 30, "relevant": 40, "constraint": 36}
    return write_workbook([
        Sheet(title, pd.DataFrame([[row.get(c) for c in columns] for row in rows],
                                  columns=list(columns), dtype=object),
              column_widths={c: widths.get(c, 16) for c in columns}, wrap_text=True)
        for title, columns, rows in sheets])
