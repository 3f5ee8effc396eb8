"""A refused file's problems in the reader's language: the one translation point of tabular.

Every problem :mod:`tabular.reading` finds has a stable ``code`` and ``params``
(:data:`tabular.messages.TEMPLATES`); :data:`MESSAGES` holds one msgid per code, the
English template written with Chameleon/translationstring ``${name}`` fields.
:func:`file_problem_text` is what every upload page shows for a problem: where it is
(sheet, row, column) and what, both translated. A problem without a known code (an
importer's own check, a package's plain message) keeps its English text.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tabular.messages import SHOWN_NAMES, shown_name
from tabular.reading import MESSAGE_CHARS

from .i18n import _

__all__ = ["MESSAGES", "file_problem_text", "file_problems_text"]

#: tabular code -> msgid (``'${x}'`` where the English template has ``{x!r}``)
MESSAGES: dict[str, Any] = {
    "empty_file": _("the file is empty"),
    "too_large": _("the file is larger than ${limit_bytes}"),
    "file_not_found": _("file not found"),
    "cannot_read": _("cannot read the file (${detail})"),
    "time_budget": _("reading stopped after ${seconds} s: the file is too big or too complex "
                     "to read here; split it or save it as 'CSV UTF-8'"),
    "old_xls": _("an old .xls workbook: save it as .xlsx or as 'CSV UTF-8'"),
    "not_text": _("the file is neither UTF-8 nor GBK text; save it as 'CSV UTF-8' or as "
                  ".xlsx"),
    "not_utf8": _("not UTF-8 text (byte 0x${byte}); save the file as UTF-8"),
    "nul": _("the file contains a NUL character (is it really a CSV file?)"),
    "bad_csv": _("unreadable CSV (${detail})"),
    "cell_too_long": _("a cell longer than ${limit} characters"),
    "row_width": _("${values} values but the header has ${columns} columns"),
    "too_many_rows": _("more than ${limit} data rows; split the file"),
    "no_header": _("no header row"),
    "too_many_columns": _("the header has ${columns} columns; at most ${limit} are read"),
    "long_column_name": _("a column name longer than ${limit} characters ('${name}')"),
    "empty_column_name": _("empty column name in the header"),
    "duplicate_column": _("column name appears twice in the header"),
    "column_not_found": _("column not found; the header has: ${names}"),
    "not_zip": _("not a readable XLSX workbook (File is not a zip file)"),
    "unreadable_xlsx": _("not a readable XLSX workbook (${detail})"),
    "no_part": _("not a readable XLSX workbook (there is no item named '${part}' in the "
                 "archive)"),
    "zip_members": _("the workbook has ${members} parts (at most ${limit}); is it really a "
                     "table?"),
    "zip_unpacked": _("the workbook unpacks to ${unpacked_bytes} (at most ${limit_bytes}); "
                      "is it really a table?"),
    "zip_ratio": _("the part '${part}' unpacks ${ratio} times its packed size (at most "
                   "${limit}); a zip bomb?"),
    "part_too_big": _("the part '${part}' unpacks to ${size_bytes} (at most ${limit_bytes})"),
    "part_overflow": _("the part '${part}' unpacks to more than ${limit_bytes}"),
    "xml_tag": _("the part '${part}' holds an XML tag longer than ${limit_bytes}"),
    "xml_dtd": _("not a readable XLSX workbook (${part}: a document type declaration "
                 "(entities are not read))"),
    "xml_error": _("not a readable XLSX workbook (${part}: ${error} at line ${line})"),
    "no_worksheet": _("the workbook has no worksheet"),
    "no_sheet": _("the workbook has no sheet '${sheet}' (it has ${sheets})"),
    "no_sheet_none": _("the workbook has no sheet '${sheet}' (it has none)"),
    "shared_strings_count": _("the shared-strings table holds more than ${limit} strings"),
    "shared_string_long": _("shared string ${index} is longer than ${limit} characters"),
    "cell_parts": _("a cell of more than ${limit} parts"),
    "bad_cell_value": _("not a readable XLSX cell value '${value}' (${detail})"),
    "bad_cell_ref": _("not a readable XLSX cell reference '${ref}'"),
    "column_past_cap": _("a value in column ${column}, past the ${limit} columns read"),
}

Translate = Callable[[Any], str]


def _value(name: str, value: Any, translate: Translate) -> str:
    """One param as a page shows it (tabular.messages' rule, units translated)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if name.endswith("bytes") and isinstance(value, int):
        if value >= 1024 * 1024:
            return f"{value // (1024 * 1024):,} MB"
        return translate(_("${n} bytes", mapping={"n": f"{value:,}"}))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        names = ", ".join(shown_name(str(n)) for n in value[:SHOWN_NAMES])
        more = len(value) - SHOWN_NAMES
        if more <= 0:
            return names
        return translate(_("${names} and ${more} more",
                           mapping={"names": names, "more": f"{more:,}"}))
    return str(value)


def _message(problem: Any, translate: Translate) -> str:
    code = getattr(problem, "code", None)
    message = problem.message
    if code in MESSAGES:
        params: Mapping[str, Any] = getattr(problem, "params", None) or {}
        text = translate(_(MESSAGES[code], mapping={
            k: _value(k, v, translate) for k, v in params.items()}))
    elif getattr(message, "translation", None) is not None:  # a package's own said text
        text = translate(message.translation)
    else:
        text = str(message)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "..."


def _where(problem: Any) -> Any:
    row, column = problem.row, problem.column
    if row is not None and column:
        return _("row ${row}, column '${column}'", mapping={"row": row, "column": column})
    if row is not None:
        return _("row ${row}", mapping={"row": row})
    if column:
        return _("column '${column}'", mapping={"column": column})
    return None


def file_problem_text(problem: Any, translate: Translate) -> str:
    """A file's problem as a page shows it, e.g. ``工作表 'x'，第 3 行，'name' 列：...``.

    ``problem`` is a :class:`tabular.reading.Problem` (or anything with its ``sheet``,
    ``row``, ``column`` and ``message``); ``translate`` is ``request.translate`` or
    :func:`learningcity.i18n.translator`. The message is translated by its tabular
    ``code``; a message with a ``translation`` (a package's translation string) by that;
    any other keeps its English text. The file name is not repeated (the page names it).
    """
    message = _message(problem, translate)
    where = _where(problem)
    if problem.sheet:
        where = (_("sheet '${sheet}', ${where}", mapping={
            "sheet": problem.sheet, "where": translate(where)}) if where is not None
            else _("sheet '${sheet}'", mapping={"sheet": problem.sheet}))
    if where is None:
        return message
    return translate(_("${where}: ${message}", mapping={"where": translate(where),
                                                         "message": message}))


def file_problems_text(error: Any, translate: Translate) -> list[str]:
    """Every kept problem of a refused file (a ``TableError``) as :func:`file_problem_text`
    shows it, then how many more were found when some were not kept."""
    problems = list(getattr(error, "problems", None) or [])
    lines = [file_problem_text(p, translate) for p in problems]
    more = (getattr(error, "total", 0) or 0) - len(problems)
    if more > 0:
        lines.append(translate(_("... and ${more} more problems",
                                 mapping={"more": f"{more:,}"})))
    return lines
