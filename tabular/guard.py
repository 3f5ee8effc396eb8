"""The one guard against CSV injection, for every exporter in the project.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some
programs, a tab or carriage return) as a formula: ``=HYPERLINK("http://evil", "click")``
typed as a survey answer or an item text would become a live link in a researcher's
Excel. The rule, applied by every CSV writer:

- numeric columns are written as numbers and never touched;
- a text cell starting with one of those characters gets a leading apostrophe
  (``'=HYPERLINK(...)``), which spreadsheets show as text; a text cell that is
  just a number (``-1.5``) is harmless and left as it is;
- readers undo the guard with :func:`unguard_cell`, so export -> import round-trips.

XLSX writers instead type such cells as strings (``cell.data_type = "s"``, see
:func:`mark_text_cells`), which Excel never evaluates, so the text stays exact.

Moved here from ``scoring/csvsafe.py`` (it is not measurement science); same functions,
same behaviour.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_START", "guard_cell", "mark_text_cells", "safe_row", "safe_value",
           "unguard_cell"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _needs_guard(value: str) -> bool:
    """A formula start (not a plain number), possibly behind apostrophes already there."""
    stripped = value.lstrip("'")
    return stripped.startswith(FORMULA_START) and not _is_number(stripped)


def guard_cell(value: str) -> str:
    """Neutralise a text cell a spreadsheet would run as a formula (CSV injection).

    Text that already starts with apostrophes before a formula gets one more, so
    :func:`unguard_cell` always gives back exactly the original text.
    """
    return "'" + value if _needs_guard(value) else value


def unguard_cell(value: str) -> str:
    """Undo :func:`guard_cell` when reading a file back (``'=x`` -> ``=x``)."""
    if value.startswith("'") and _needs_guard(value[1:]):
        return value[1:]
    return value


def safe_value(value: Any) -> Any:
    """A value ready for a CSV writer: text guarded, numbers and None left alone."""
    if isinstance(value, str):
        return guard_cell(value)
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """:func:`safe_value` over a row."""
    return [safe_value(v) for v in values]


def mark_text_cells(rows: Iterable[Iterable[Any]]) -> None:
    """Type every text cell of openpyxl rows as a string, so it is never a formula."""
    for row in rows:
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
