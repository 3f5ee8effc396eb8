"""Reading item files (CSV, XLSX, JSON) into checked item specifications.

Column layout (CSV and XLSX share it; the first sheet of an XLSX file is read;
a header row names the columns, in any order):

=============  ========================================================================
code           stable item code, unique in the bank (e.g. ``DIG-001``); required
domain         domain code (``digital``, ``information``, ``reading``, ``numeracy``,
               ``health_science``, ``motivation``, ``self_directed``...); required
subdomain      free text content area inside the domain, for balancing
type           ``single_choice`` (scored 0/1 against ``key``) or ``rating`` (ordered
               categories scored 0..K-1); required
stem_zh        the question in simplified Chinese; required
stem_en        the question in English; required
optionN_zh     option N (N = 1..9) in Chinese; options are numbered without gaps
optionN_en     option N in English; every option needs both languages
key            1-based number of the correct option (single_choice only)
reverse        ``true`` for reverse-keyed rating items (default false)
media          optional image path or URL shown with the stem
tags           semicolon-separated tags
author         who wrote the item
status         ``draft`` (default), ``pilot``, ``operational`` or ``retired``
=============  ========================================================================

JSON: a list of objects ``{"code", "domain", "subdomain", "type", "stem": {"zh",
"en"}, "options": [{"zh", "en"}, ...], "key", "reverse", "media", "tags": [...],
"author", "status"}``; the keys ``difficulty_hint`` and ``notes`` are authoring notes
and are ignored. Every problem in a file is reported at once, with its row (CSV/XLSX:
the spreadsheet row number, header = row 1; JSON: the 1-based position in the list).

CSV (UTF-8, with or without BOM) and XLSX are read by the project's one table reader,
:func:`tabular.reading.read_table`, which undoes the formula guard of our CSV export. A
file it refuses (not UTF-8, unreadable, rows longer than the header) is an
:class:`ItemFileError`; problems of readable rows go into the :class:`ImportReport`.
Both are tabular's :class:`~tabular.reading.Problem` s (file, sheet, row, column).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabular.guard import unguard_cell  # noqa: F401 (read_table's unguard=True; tested)
from tabular.reading import Problem, Problems, Table, TableError, read_table

from .models import ITEM_STATUSES, ITEM_TYPES

MAX_OPTIONS = 9
#: data rows of an item file (a bank has hundreds to a few thousand items; docs/uploads.md)
MAX_ITEM_ROWS = 20_000
CSV_COLUMNS = (["code", "domain", "subdomain", "type", "stem_zh", "stem_en"]
               + [f"option{n}_{lang}" for n in range(1, MAX_OPTIONS + 1) for lang in ("zh", "en")]
               + ["key", "reverse", "media", "tags", "author", "status"])
JSON_KEYS = {"code", "domain", "subdomain", "type", "stem", "options", "key", "reverse",
             "media", "tags", "author", "status"}
JSON_IGNORED = {"difficulty_hint", "notes"}
TRUE = {"true", "1", "yes", "y", "是"}
FALSE = {"false", "0", "no", "n", "否", ""}


@dataclass
class ItemSpec:
    """One item as read from a file, before it touches the database."""

    row: int
    code: str
    domain: str
    subdomain: str
    type: str
    stem_zh: str
    stem_en: str
    options: list[dict[str, str]]
    key: int | None
    reverse: bool
    media: str | None
    tags: list[str]
    author: str
    status: str


@dataclass
class ImportReport:
    """Items read and problems found; a file with any problem imports nothing.

    ``problems`` are tabular's :class:`~tabular.reading.Problem` s (``file`` is the
    source, ``sheet`` the XLSX sheet read), every one of them, in the order found.
    """

    source: str
    items: list[ItemSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sheet: str | None = None

    def add(self, row: int, column: str, message: str) -> None:
        self.problems.append(Problem(self.source, self.sheet, row, column, message))

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """``items.csv: 2 problem(s); nothing was imported`` and one line per problem,
        ``  row 3, domain: unknown domain 'x'``."""
        lines = [f"{self.source}: {len(self.problems)} problem(s); nothing was imported"]
        lines += [f"  row {p.row}, {p.column}: {p.message}" for p in self.problems]
        return "\n".join(lines)

    def error(self) -> TableError:
        """The problems as tabular's error type."""
        return TableError(self.problems)


class ItemFileError(TableError):
    """The file cannot be read at all (encoding, format, rows wider than the header):
    tabular's error type, each problem naming the file (and sheet, row, column)."""

    @classmethod
    def of(cls, problems: Problems | TableError) -> ItemFileError:
        """The refusal carrying a collector's or a reader's problems (and their count)."""
        kept = problems.kept if isinstance(problems, Problems) else problems.problems
        return cls(kept, problems.total)

    @classmethod
    def about(cls, name: str, message: str) -> ItemFileError:
        """A refusal of the whole file."""
        return cls([Problem(name, None, None, None, message)])


def read_item_file(path: str | Path, data: bytes | None = None) -> ImportReport:
    """Read and check an item file; the format comes from the extension."""
    path = Path(path)
    raw = data if data is not None else path.read_bytes()
    suffix = path.suffix.lower()
    report = ImportReport(path.name)
    if suffix == ".json":
        records = _json_records(path.name, raw)
    elif suffix in (".csv", ".xlsx", ".xlsm"):
        table = _read_table(path.name, raw)
        report.sheet = table.sheet
        records = _table_records(report, table)
    else:
        raise ItemFileError.about(path.name, f"unknown item file type {suffix!r}; "
                                  "use .csv, .xlsx or .json")
    for row, record, unknown in records:
        for column in unknown:
            report.add(row, column, "unknown column")
        spec = _check(report, row, record)
        if spec is not None:
            report.items.append(spec)
    seen: dict[str, int] = {}
    for spec in report.items:
        if spec.code in seen:
            report.add(spec.row, "code", f"duplicate code {spec.code!r} (also row "
                                         f"{seen[spec.code]})")
        seen.setdefault(spec.code, spec.row)
    if not report.items and not report.problems:
        report.add(1, "file", "no items found")
    return report


def _decode(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ItemFileError.about(name, f"not UTF-8 text (bad byte at line {line}); save "
                                  "the file as UTF-8") from None


def _read_table(name: str, raw: bytes) -> Table:
    """A CSV (UTF-8) or XLSX item file as text rows, our CSV export's guard undone."""
    try:
        return read_table(raw, name, encodings=("utf-8",), unguard=True, check_header=False,
                          max_rows=MAX_ITEM_ROWS)
    except TableError as exc:
        raise ItemFileError.of(exc) from None


def _table_records(report: ImportReport, table: Table
                   ) -> list[tuple[int, dict[str, Any], list[str]]]:
    """Each row as a record of the JSON shape; unknown and repeated columns are problems
    of the header row."""
    header = table.header
    known = set(CSV_COLUMNS)
    for position, name in enumerate(header, start=1):
        if name and name in header[:position - 1]:
            report.add(table.header_row, name, "column appears twice in the header")
        elif name and name not in known:
            report.add(table.header_row, name, "unknown column")
    records: list[tuple[int, dict[str, Any], list[str]]] = []
    for number, cells in table.records():
        record: dict[str, Any] = dict(cells)
        options = []
        for n in range(1, MAX_OPTIONS + 1):
            zh, en = record.pop(f"option{n}_zh", ""), record.pop(f"option{n}_en", "")
            options.append({"zh": zh, "en": en})
        while options and not options[-1]["zh"] and not options[-1]["en"]:
            options.pop()
        record["options"] = options
        record["tags"] = [t.strip() for t in record.get("tags", "").split(";") if t.strip()]
        records.append((number, record, []))
    return records


def _json_records(name: str, raw: bytes) -> list[tuple[int, dict[str, Any], list[str]]]:
    try:
        data = json.loads(_decode(name, raw))
    except json.JSONDecodeError as exc:
        raise ItemFileError.about(name, f"not valid JSON (line {exc.lineno}, column "
                                  f"{exc.colno}: {exc.msg})") from None
    if isinstance(data, dict) and "items" in data:
        data = data["items"]
    if not isinstance(data, list):
        raise ItemFileError.about(name, "expected a list of items")
    records = []
    for number, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            records.append((number, {"__notobject__": "1"}, []))
            continue
        unknown = sorted(set(obj) - JSON_KEYS - JSON_IGNORED)
        record = {k: v for k, v in obj.items() if k in JSON_KEYS}
        stem = obj.get("stem") or {}
        record["stem_zh"] = stem.get("zh", "") if isinstance(stem, dict) else ""
        record["stem_en"] = stem.get("en", "") if isinstance(stem, dict) else ""
        records.append((number, record, unknown))
    return records


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _check(report: ImportReport, row: int, r: dict[str, Any]) -> ItemSpec | None:
    """Check one record; add every problem found; return the spec when it is clean."""
    if "__notobject__" in r:
        report.add(row, "item", "not a JSON object")
        return None
    before = len(report.problems)
    code = _text(r.get("code"))
    if not code:
        report.add(row, "code", "missing")
    elif len(code) > 64 or any(ch.isspace() for ch in code):
        report.add(row, "code", f"{code!r} must be at most 64 characters without spaces")
    domain = _text(r.get("domain"))
    if not domain:
        report.add(row, "domain", "missing")
    item_type = _text(r.get("type")) or "single_choice"
    if item_type not in ITEM_TYPES:
        report.add(row, "type", f"unknown type {item_type!r}; use {' or '.join(ITEM_TYPES)}")
    status = _text(r.get("status")) or "draft"
    if status not in ITEM_STATUSES:
        report.add(row, "status", f"unknown status {status!r}; use {', '.join(ITEM_STATUSES)}")
    for lang in ("zh", "en"):
        if not _text(r.get(f"stem_{lang}")):
            report.add(row, f"stem_{lang}", "missing")
    options = r.get("options") or []
    if not isinstance(options, list):
        report.add(row, "options", "must be a list")
        options = []
    clean_options = []
    for n, option in enumerate(options, start=1):
        if not isinstance(option, dict):
            report.add(row, f"option{n}", "must have zh and en text")
            continue
        zh, en = _text(option.get("zh")), _text(option.get("en"))
        if not zh or not en:
            missing = "zh" if not zh else "en"
            report.add(row, f"option{n}_{missing}",
                       "option count mismatch: every option needs Chinese and English text")
        clean_options.append({"zh": zh, "en": en})
    if len(clean_options) < 2:
        report.add(row, "options", f"needs at least 2 options, has {len(clean_options)}")
    key_text = _text(r.get("key"))
    key: int | None = None
    if item_type == "single_choice":
        if not key_text:
            report.add(row, "key", "missing: a single-choice item needs the number of its "
                                   "correct option")
        else:
            try:
                key = int(float(key_text))
                if float(key_text) != key:
                    raise ValueError
            except ValueError:
                report.add(row, "key", f"{key_text!r} is not an option number")
            else:
                if not 1 <= key <= len(clean_options):
                    report.add(row, "key", f"option {key} does not exist (the item has "
                                           f"{len(clean_options)} options)")
    elif key_text:
        report.add(row, "key", "rating items have no key (their categories are scored in "
                               "order)")
    reverse_raw = r.get("reverse", False)
    reverse_text = _text(reverse_raw).lower()
    if isinstance(reverse_raw, bool):
        reverse = reverse_raw
    elif reverse_text in TRUE:
        reverse = True
    elif reverse_text in FALSE:
        reverse = False
    else:
        report.add(row, "reverse", f"{reverse_raw!r} is not true/false")
        reverse = False
    if reverse and item_type != "rating":
        report.add(row, "reverse", "only rating items can be reverse-keyed")
    tags = r.get("tags") or []
    if not isinstance(tags, list):
        report.add(row, "tags", "must be a list")
        tags = []
    if len(report.problems) > before:
        return None
    return ItemSpec(row=row, code=code, domain=domain, subdomain=_text(r.get("subdomain")),
                    type=item_type, stem_zh=_text(r.get("stem_zh")),
                    stem_en=_text(r.get("stem_en")), options=clean_options, key=key,
                    reverse=reverse, media=_text(r.get("media")) or None,
                    tags=[_text(t) for t in tags if _text(t)],
                    author=_text(r.get("author")), status=status)


def spec_to_row(spec: ItemSpec) -> dict[str, str]:
    """The CSV/XLSX row of an item, inverse of the reader (used by export)."""
    row = {c: "" for c in CSV_COLUMNS}
    row.update(code=spec.code, domain=spec.domain, subdomain=spec.subdomain, type=spec.type,
               stem_zh=spec.stem_zh, stem_en=spec.stem_en,
               key="" if spec.key is None else str(spec.key),
               reverse="true" if spec.reverse else "false", media=spec.media or "",
               tags=";".join(spec.tags), author=spec.author, status=spec.status)
    for n, option in enumerate(spec.options, start=1):
        row[f"option{n}_zh"], row[f"option{n}_en"] = option["zh"], option["en"]
    return row


def spec_to_json(spec: ItemSpec) -> dict[str, Any]:
    return {"code": spec.code, "domain": spec.domain, "subdomain": spec.subdomain,
            "type": spec.type, "stem": {"zh": spec.stem_zh, "en": spec.stem_en},
            "options": spec.options, "key": spec.key, "reverse": spec.reverse,
            "media": spec.media, "tags": spec.tags, "author": spec.author,
            "status": spec.status}
