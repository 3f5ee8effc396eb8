"""Definition files in any format: the one way to read a survey document.

A definition is JSON (:mod:`surveys.definition`) or an XLSForm workbook (.xlsx, .xls)
(:mod:`surveys.xlsform`); this module picks the reader by the file name, so neither
format module needs the other.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .definition import BankItem, Problem, Survey, SurveyReport, read_json
from .xlsform import read_xlsform

__all__ = ["MAX_UPLOAD", "WORKBOOK_SUFFIXES", "load_survey", "read_definition"]

#: the largest definition file read (a real one is a few hundred KB)
MAX_UPLOAD = 5 * 1024 * 1024
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def read_definition(name: str, data: bytes, bank: Mapping[str, BankItem] | None = None, *,
                    max_bytes: int = MAX_UPLOAD) -> SurveyReport:
    """Read a JSON or XLSForm (.xlsx/.xls) definition from bytes; the report lists every
    problem and warning."""
    if len(data) > max_bytes:
        return SurveyReport(name, problems=[Problem(
            name, "", "", f"file larger than {max_bytes // (1024 * 1024)} MB")])
    if name.lower().endswith(WORKBOOK_SUFFIXES):
        return read_xlsform(name, data=data, bank=bank)
    if name.lower().endswith(".json"):
        return read_json(name, data=data, bank=bank)
    return SurveyReport(name, problems=[Problem(name, "", "", "a survey definition is a "
                                                              ".json, .xlsx or .xls file")])


def load_survey(path: str | Path, bank: Mapping[str, BankItem] | None = None) -> Survey:
    """Read a ``.json``, ``.xlsx`` or ``.xls`` definition file; raise :class:`SurveyError` listing
    all problems."""
    path = Path(path)
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        report = read_xlsform(path, bank=bank)
    else:
        report = read_json(path, bank=bank)
    return report.survey_or_raise()
