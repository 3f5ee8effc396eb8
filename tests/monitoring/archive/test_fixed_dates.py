"""XLSX and PDF of the archive carry the year's end as their dates, so files written at
different times are byte-identical (the reproducibility of the bundle rests on this)."""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import openpyxl
import pandas as pd

from monitoring.archive.bundle import fixed_xlsx, pdf_dates_html, year_end
from tabular.writing import Sheet, write_workbook


def _restamp(body: bytes, when: dt.datetime) -> bytes:
    """The workbook as openpyxl would have written it at ``when`` (zip times, core.xml)."""
    out = io.BytesIO()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(body)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*",
                              lambda m: m.group(1) + stamp, data)
            dst.writestr(zipfile.ZipInfo(info.filename, when.timetuple()[:6]), data)
    return out.getvalue()


def test_workbooks_written_at_other_times_become_identical() -> None:
    body = write_workbook([Sheet("data", pd.DataFrame({"a": [1, 2], "b": ["x", "中"]}))])
    early = _restamp(body, dt.datetime(2026, 1, 2, 3, 4, 6))
    late = _restamp(body, dt.datetime(2027, 5, 6, 7, 8, 10))
    assert early != late
    end = year_end(2025)
    assert fixed_xlsx(early, end) == fixed_xlsx(late, end)
    book = openpyxl.load_workbook(io.BytesIO(fixed_xlsx(late, end)))
    assert book.properties.created == book.properties.modified == dt.datetime(2025, 12, 31)
    assert book["data"]["b3"].value == "中"
    with zipfile.ZipFile(io.BytesIO(fixed_xlsx(late, end))) as z:
        assert {i.date_time for i in z.infolist()} == {(2025, 12, 31, 0, 0, 0)}


def test_the_pdf_document_gets_fixed_dates() -> None:
    html = pdf_dates_html("<html><head><title>t</title></head><body></body></html>",
                          year_end(2025))
    assert '<meta name="dcterms.created" content="2025-12-31T00:00:00Z">' in html
    assert '<meta name="dcterms.modified" content="2025-12-31T00:00:00Z">' in html
