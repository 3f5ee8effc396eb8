"""The English text of every problem the reader itself finds, one template per stable code.

A :class:`~tabular.reading.Problem` made here carries its ``code`` and ``params`` besides
the English ``message`` built from :data:`TEMPLATES`, so the text (command line, logs,
tests) and what a page translates by the code cannot drift apart. Pages translate the
code with the same params (``learningcity.filemessages``); an unknown code shows the text.

Params are plain values, shown by one rule in every language: an ``int`` with thousands
separators, a ``float`` as ``%g``, a name ending in ``bytes`` as a size (``512 MB``), a
list of names as at most :data:`SHOWN_NAMES` of them each cut to :data:`SHOWN_CHARS`
characters, then how many more; anything else as its text. Standard library only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SHOWN_CHARS", "SHOWN_NAMES", "TEMPLATES", "english", "megabytes", "shown_name"]

#: names shown in one message (a header's columns, a workbook's sheets) before "..."
SHOWN_NAMES = 20
#: characters of a name quoted in a message
SHOWN_CHARS = 40

#: code -> English template (``str.format`` fields, each a param of the problem)
TEMPLATES: dict[str, str] = {
    # the whole file
    "empty_file": "the file is empty",
    "too_large": "the file is larger than {limit_bytes}",
    "file_not_found": "file not found",
    "cannot_read": "cannot read the file ({detail})",
    "time_budget": "reading stopped after {seconds} s: the file is too big or too complex "
                   "to read here; split it or save it as 'CSV UTF-8'",
    "old_xls": "an old .xls workbook: save it as .xlsx or as 'CSV UTF-8'",
    # CSV text
    "not_text": "the file is neither UTF-8 nor GBK text; save it as 'CSV UTF-8' or as .xlsx",
    "not_utf8": "not UTF-8 text (byte 0x{byte}); save the file as UTF-8",
    "nul": "the file contains a NUL character (is it really a CSV file?)",
    "bad_csv": "unreadable CSV ({detail})",
    # rows and cells
    "cell_too_long": "a cell longer than {limit} characters",
    "row_width": "{values} values but the header has {columns} columns",
    "too_many_rows": "more than {limit} data rows; split the file",
    # the header
    "no_header": "no header row",
    "too_many_columns": "the header has {columns} columns; at most {limit} are read",
    "long_column_name": "a column name longer than {limit} characters ({name!r})",
    "empty_column_name": "empty column name in the header",
    "duplicate_column": "column name appears twice in the header",
    "column_not_found": "column not found; the header has: {names}",
    # the XLSX archive
    "not_zip": "not a readable XLSX workbook (File is not a zip file)",
    "unreadable_xlsx": "not a readable XLSX workbook ({detail})",
    "no_part": "not a readable XLSX workbook (there is no item named {part!r} in the "
               "archive)",
    "zip_members": "the workbook has {members} parts (at most {limit}); is it really a "
                   "table?",
    "zip_unpacked": "the workbook unpacks to {unpacked_bytes} (at most {limit_bytes}); is "
                    "it really a table?",
    "zip_ratio": "the part {part!r} unpacks {ratio} times its packed size (at most "
                 "{limit}); a zip bomb?",
    "part_too_big": "the part {part!r} unpacks to {size_bytes} (at most {limit_bytes})",
    "part_overflow": "the part {part!r} unpacks to more than {limit_bytes}",
    "xml_tag": "the part {part!r} holds an XML tag longer than {limit_bytes}",
    "xml_dtd": "not a readable XLSX workbook ({part}: a document type declaration "
               "(entities are not read))",
    "xml_error": "not a readable XLSX workbook ({part}: {error} at line {line})",
    # the workbook's content
    "no_worksheet": "the workbook has no worksheet",
    "no_sheet": "the workbook has no sheet {sheet!r} (it has {sheets})",
    "no_sheet_none": "the workbook has no sheet {sheet!r} (it has none)",
    "shared_strings_count": "the shared-strings table holds more than {limit} strings",
    "shared_string_long": "shared string {index} is longer than {limit} characters",
    "cell_parts": "a cell of more than {limit} parts",
    "bad_cell_value": "not a readable XLSX cell value {value!r} ({detail})",
    "bad_cell_ref": "not a readable XLSX cell reference {ref!r}",
    "column_past_cap": "a value in column {column}, past the {limit} columns read",
}


def megabytes(n: int) -> str:
    """A size as the messages show it: whole MB from 1 MB, else bytes."""
    return f"{n // (1024 * 1024):,} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def shown_name(name: str) -> str:
    """A name for a message, cut to :data:`SHOWN_CHARS` characters."""
    return name if len(name) <= SHOWN_CHARS else name[:SHOWN_CHARS] + "..."


def english_value(name: str, value: Any) -> str:
    """One param as the English text shows it (the rule of the module docstring)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if name.endswith("bytes") and isinstance(value, int):
        return megabytes(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return names_text(value)
    return str(value)


def names_text(names: Sequence[Any], more_text: str = " and {more} more",
               separator: str = ", ") -> str:
    """At most :data:`SHOWN_NAMES` names, cut, then how many more there are."""
    shown = separator.join(shown_name(str(n)) for n in names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (more_text.format(more=f"{more:,}") if more > 0 else "")


def english(code: str, params: Mapping[str, Any]) -> str:
    """The English text of a problem: its code's template filled with its params."""
    return TEMPLATES[code].format(**{k: english_value(k, v) for k, v in params.items()})
