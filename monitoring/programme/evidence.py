"""Evidence files attached to reports: PDF, JPEG, PNG or XLSX, at most
:data:`MAX_BYTES`, kept in the main database (as private as the rest of it: staff only,
the district's or department's own and the city office's). The type is judged from the
file's first bytes and its name together; anything else is refused and nothing stored.
"""
from __future__ import annotations

import hashlib
import re

from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.i18n import _
from monitoring.programme.models import ProgrammeEvidence, ProgrammeReport
from monitoring.programme.reporting import EDITABLE, STEP_REFUSED, ReportError

MAX_BYTES = 5 * 1024 * 1024
MAX_FILES = 20
#: suffix -> (media type, the bytes such a file starts with)
TYPES = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              (b"PK\x03\x04",)),
}
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def safe_name(filename: str) -> str:
    """The file's own name without folders or odd characters (at most 120)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .") or "evidence"
    return name[-120:]


def media_type(filename: str, data: bytes) -> str:
    """The media type of an acceptable evidence file; ReportError otherwise."""
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in TYPES:
        raise ReportError([("", "evidence", _("only PDF, JPEG, PNG or XLSX files"))])
    kind, magics = TYPES[suffix]
    if not any(data.startswith(m) for m in magics):
        raise ReportError([("", "evidence", _("the file is not a ${kind} file",
                                                mapping={"kind": suffix[1:].upper()}))])
    return kind


def add(db: Session, report: ProgrammeReport, filename: str, data: bytes, actor: str,
        max_bytes: int = MAX_BYTES) -> ProgrammeEvidence:
    """Attach a file to a draft or returned report (checked, audited)."""
    if report.state not in EDITABLE:
        raise ReportError([("", "state", STEP_REFUSED["changed"])])
    if not data:
        raise ReportError([("", "evidence", _("the file is empty"))])
    if len(data) > max_bytes:
        raise ReportError([("", "evidence",
                            _("at most ${mb} MB per file",
                              mapping={"mb": max_bytes // (1024 * 1024)}))])
    if len(report.evidence) >= MAX_FILES:
        raise ReportError([("", "evidence", _("at most ${n} files per report",
                                                mapping={"n": MAX_FILES}))])
    name = safe_name(filename)
    kind = media_type(name, data)
    row = ProgrammeEvidence(filename=name, content_type=kind, size=len(data),
                            sha256=hashlib.sha256(data).hexdigest(), data=data,
                            uploaded_by=actor[:64])
    report.evidence.append(row)
    db.flush()
    audit.record(db, actor=actor, action="programme.report.evidence",
                 target=f"{report.period.code}/{report.unit_kind}/{report.unit_code}",
                 detail={"file": name, "size": len(data), "sha256": row.sha256})
    return row


def get(db: Session, evidence_id: int) -> ProgrammeEvidence | None:
    """An evidence file by id, or None."""
    return db.get(ProgrammeEvidence, evidence_id)
