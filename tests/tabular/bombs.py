"""The upload bombs of issue 16, built in memory, and a harness that times one in a child.

Standard library only, so the same file measures any checkout's reader::

    PYTHONPATH=/work/main python tests/tabular/bombs.py             # before
    PYTHONPATH=. python tests/tabular/bombs.py                       # after

prints, per bomb, the seconds and peak memory (VmHWM of a fresh child process reading
the bomb with ``tabular.reading.read_table``) and the first line of the error.
"""
from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


# ------------------------------------------------------------------ a hand-made zip

def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def repeated_deflate(chunk: bytes, times: int) -> bytes:
    """Raw deflate of ``chunk * times`` without building it: after a full flush the
    compressor forgets its window, so one flushed block repeated is a valid stream."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    return block * times + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


class Member:
    """One zip member: its name, compressed bytes and what the zip declares about it."""

    def __init__(self, name: str, data: bytes | None = None, *, packed: bytes | None = None,
                 size: int | None = None, crc: int | None = None) -> None:
        self.name = name.encode()
        self.packed = packed if packed is not None else _deflate(data or b"")
        self.size = size if size is not None else len(data or b"")
        self.crc = crc if crc is not None else zlib.crc32(data or b"")


def zip_bytes(members: Iterable[Member], *, declared_count: int | None = None) -> bytes:
    """A deflated zip written by hand, so sizes and counts may be declared falsely."""
    out, central, count = bytearray(), bytearray(), 0
    for m in members:
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, m.crc,
                           len(m.packed), m.size, len(m.name), 0) + m.name + m.packed
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21,
                               m.crc, len(m.packed), m.size, len(m.name), 0, 0, 0, 0, 0,
                               offset) + m.name
        count += 1
    start = len(out)
    out += central
    n = count if declared_count is None else declared_count
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                       len(central), start, 0)
    return bytes(out)


def sheet_xml(rows: str, dimension: str = "A1") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">'
            f'<dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>'
            ).encode()


def xlsx_members(sheet: bytes | Member, *, shared: bytes | Member | None = None,
                 extra: Iterable[Member] = ()) -> list[Member]:
    """The least a reader (ours or openpyxl) needs: content types, relationships, one
    sheet and, when given, a shared-strings table."""
    strings_type = ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
             'openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
             'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/><Override '
             'PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
             'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.spreadsheetml.worksheet+xml"/>'
             + (strings_type if shared is not None else "") + '</Types>')
    rels = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    book = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" '
            f'xmlns:r="{REL}"><sheets><sheet name="s" sheetId="1" r:id="rId1"/></sheets>'
            '</workbook>')
    strings_rel = ('<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/sharedStrings" '
                   'Target="sharedStrings.xml"/>')
    book_rels = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
                 '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                 'officeDocument/2006/relationships/worksheet" Target="worksheets/'
                 'sheet1.xml"/>' + (strings_rel if shared is not None else "")
                 + '</Relationships>')
    members = [Member("[Content_Types].xml", types.encode()), Member("_rels/.rels",
                                                                      rels.encode()),
               Member("xl/workbook.xml", book.encode()),
               Member("xl/_rels/workbook.xml.rels", book_rels.encode()),
               sheet if isinstance(sheet, Member)
               else Member("xl/worksheets/sheet1.xml", sheet)]
    if shared is not None:
        members.append(shared if isinstance(shared, Member)
                       else Member("xl/sharedStrings.xml", shared))
    return members + list(extra)


def inline(column: str, row: int, text: str) -> str:
    return f'<c r="{column}{row}" t="inlineStr"><is><t>{text}</t></is></c>'


# ------------------------------------------------------------------ the bombs

def declared_dimension() -> bytes:
    """2 KB declaring A1:XFD200001: 9,000 rows each holding one styled empty cell in
    column XFD before the header (openpyxl pads each to 16,384 cells), then a header and
    one data row."""
    far = '<row><c r="XFD1" s="0"/></row>' * 9_000
    rows = far + (f'<row r="9001">{inline("A", 9001, "id")}{inline("B", 9001, "x")}</row>'
                  f'<row r="9002">{inline("A", 9002, "a")}{inline("B", 9002, "1")}</row>')
    return zip_bytes(xlsx_members(sheet_xml(rows, "A1:XFD200001")))


def shared_strings() -> bytes:
    """About 3 MB: a shared-strings table of 18 million short strings (360 MB unpacked,
    a ratio of about 118) for a sheet of one cell."""
    chunk = b"".join(b"<si><t>s%03d</t></si>" % i for i in range(1000)) * 100
    times = 180
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">'.encode()
    tail = b"</sst>"
    packed = _concat_deflate([head, (chunk, times), tail])
    size = len(head) + len(chunk) * times + len(tail)
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    return zip_bytes(xlsx_members(sheet_xml(rows), shared=Member(
        "xl/sharedStrings.xml", packed=packed, size=size, crc=0)))


def _concat_deflate(parts: list) -> bytes:
    """Raw deflate of bytes and (chunk, times) parts, each part flushed on its own."""
    out = bytearray()
    for part in parts:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        if isinstance(part, tuple):
            chunk, times = part
            out += (c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)) * times
        else:
            out += c.compress(part) + c.flush(zlib.Z_FULL_FLUSH)
    return bytes(out) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def ratio() -> bytes:
    """A sheet of 4 GB of blank space packed into about 4 MB (ratio ~1000), declared
    honestly."""
    head = sheet_xml('<row r="1">' + inline("A", 1, "id") + "</row>").split(b"</sheetData>")
    chunk = b" " * (1 << 20)
    times = 4095
    packed = _concat_deflate([head[0], (chunk, times), b"</sheetData>" + head[1]])
    size = len(head[0]) + len(chunk) * times + len(b"</sheetData>") + len(head[1])
    return zip_bytes(xlsx_members(Member("xl/worksheets/sheet1.xml", packed=packed,
                                         size=size, crc=0)))


def lying_size() -> bytes:
    """A sheet declaring 2 KB that inflates to 1 GB (a reader trusting the declared size
    would be fooled): only a bounded stream stops it."""
    head = sheet_xml('<row r="1">' + inline("A", 1, "id") + "</row>").split(b"</sheetData>")
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 20_000
    packed = _concat_deflate([head[0], (row, 1000), b"</sheetData>" + head[1]])
    return zip_bytes(xlsx_members(Member("xl/worksheets/sheet1.xml", packed=packed,
                                         size=2048, crc=0)))


def many_members() -> bytes:
    """A workbook with 50,000 members (about 6 MB)."""
    extra = (Member(f"xl/media/m{i}.bin", b"") for i in range(50_000))
    rows = '<row r="1">' + inline("A", 1, "id") + "</row>"
    return zip_bytes(xlsx_members(sheet_xml(rows), extra=extra))


def csv_header() -> bytes:
    """A 2 MB CSV header of commas (2 million empty column names, then ``id``) and one
    row."""
    return b"," * 2_000_000 + b"id\n1\n"


def csv_rows() -> bytes:
    """A 40 MB CSV of 4 million data rows."""
    return b"id,x\n" + b"1,2\n" * 10_000_000


def long_cell() -> bytes:
    """A CSV whose second row holds a 5 MB cell."""
    return b"id,x\n1," + b"y" * 5_000_000 + b"\n"


def long_cell_xlsx() -> bytes:
    """An XLSX whose second row holds a 5 MB inline string (random letters, so it packs
    like text, not like a bomb)."""
    text = random.Random(16).randbytes(2_500_000).hex()
    rows = ('<row r="1">' + inline("A", 1, "id") + "</row><row r=\"2\">"
            + inline("A", 2, text) + "</row>")
    return zip_bytes(xlsx_members(sheet_xml(rows)))


BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "declared_dimension": (declared_dimension, "dimension.xlsx"),
    "shared_strings": (shared_strings, "strings.xlsx"),
    "ratio": (ratio, "ratio.xlsx"),
    "lying_size": (lying_size, "lying.xlsx"),
    "many_members": (many_members, "members.xlsx"),
    "csv_header": (csv_header, "header.csv"),
    "csv_rows": (csv_rows, "rows.csv"),
    "long_cell": (long_cell, "cell.csv"),
    "long_cell_xlsx": (long_cell_xlsx, "cell.xlsx"),
}


# ------------------------------------------------------------------ measuring

CHILD = r"""
import json, resource, sys, time
path, name, reader = sys.argv[1], sys.argv[2], sys.argv[3]
limit = int(sys.argv[4])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
data = open(path, "rb").read()
from tabular import reading
start = time.monotonic()
error = ""
try:
    if reader == "items":  # the item bank importer
        from itembank.importing import read_item_file
        read_item_file(name, data)
    elif reader == "xlsform":  # the survey importer (a report, not an exception)
        from surveys.xlsform import read_xlsform
        report = read_xlsform(name, data)
        if any("nothing" not in str(p.message) for p in report.problems[:1]):
            raise reading.TableError([reading.Problem(name, None, None, None,
                                                      str(report.problems[0].message))])
    else:
        getattr(reading, reader)(data, name)
    outcome = "read"
except reading.TableError as exc:
    outcome, error = "refused", str(exc)
except MemoryError:
    outcome = "MemoryError"
seconds = time.monotonic() - start
peak = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) * 1024
print(json.dumps({"outcome": outcome, "seconds": seconds, "peak": peak,
                  "error": error[:300]}))
"""


def measure(data: bytes, name: str, *, reader: str = "read_table", timeout: float = 300,
            memory_limit: int = 0, tmp: str = "/tmp") -> dict:
    """Read ``data`` in a fresh Python: outcome, seconds of reading, peak resident bytes
    of the whole child (VmHWM, interpreter and imports included) and the error text."""
    path = os.path.join(tmp, f"bomb-{os.getpid()}-{name}")
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", CHILD, path, name, reader,
                               str(memory_limit)], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode:
            return {"outcome": f"exit {done.returncode}", "seconds": time.monotonic() - start,
                    "peak": 0, "error": done.stderr[-300:]}
        return json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return {"outcome": "timeout", "seconds": timeout, "peak": 0, "error": ""}
    finally:
        os.unlink(path)


if __name__ == "__main__":
    readers = ("read_table", "read_frame")
    if sys.argv[1:2] == ["--importers"]:  # the item bank and survey importers, XLSX bombs
        readers = ("items", "xlsform")
        del sys.argv[1]
    for key in sys.argv[1:] or list(BOMBS):
        build, name = BOMBS[key]
        data = build()
        for reader in readers:
            if reader == "xlsform" and not name.endswith(".xlsx"):
                continue
            got = measure(data, name, reader=reader, timeout=120, memory_limit=3 << 30)
            first = got["error"].splitlines()[0] if got["error"] else ""
            print(f"{key:28} {reader:10} {len(data):>10,} B  {got['outcome']:11} "
                  f"{got['seconds']:7.2f} s  {got['peak'] / 2**20:7.0f} MB  {first[:110]}",
                  flush=True)
