"""Write ``learning_needs.xlsx`` from ``learning_needs.json`` (the JSON is the source).

The workbook is a real XLSForm (:mod:`surveys.xlsform_export`): field staff open it in a
spreadsheet, KoboToolbox / ODK Central take it as it is, and pyxform's ``xls2xform``
converts it. Run after editing the JSON so that the spreadsheet says the same:

    python -m surveys.defaults.build_xlsx

``tests/surveys/test_xlsform.py`` fails when the two files no longer load to the same
survey or the workbook is not what a fresh build makes; ``tests/surveys/
test_xlsform_export.py`` runs pyxform on it.
"""
from __future__ import annotations

from pathlib import Path

from surveys.documents import load_survey
from surveys.xlsform_export import write_xlsform

HERE = Path(__file__).resolve().parent
JSON_PATH = HERE / "learning_needs.json"
XLSX_PATH = HERE / "learning_needs.xlsx"


def build(source: Path = JSON_PATH, target: Path = XLSX_PATH) -> Path:
    """Load (and so check) the JSON definition and write it as an XLSForm workbook."""
    write_xlsform(load_survey(source), target)
    return target


if __name__ == "__main__":
    build()
