"""Build and verify the yearly archive bundle.

:func:`build_archive` asks every contributor registered under the entry-point group
``learningcity.archive_sections`` (setup.cfg) for its files of the year — a contributor
is ``(sessions, year) -> list[ArchiveFile]`` — and writes them into
``<out_dir>/learning-city-archive-YEAR/`` with ``manifest.json`` (every file's path,
size, SHA-256, descriptions and source, the build time and the project version; sorted,
canonical JSON) and ``SHA256SUMS`` (``sha256sum -c`` reads it inside the bundle).

An archive never changes once written: a bundle directory that exists and is not empty
is refused (:class:`ArchiveExists`) and left as it was; the bundle is written into a
temporary sibling directory and renamed into place, so a failed build leaves nothing.
Two builds of the same data are byte-identical apart from ``built_at`` in the manifest
(and so the manifest's line in ``SHA256SUMS``): contributors order their files and rows,
and XLSX/PDF carry fixed dates (:func:`fixed_xlsx`, :func:`pdf_dates_html`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path, PurePosixPath
from typing import Any

GROUP = "learningcity.archive_sections"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_RESERVED = {MANIFEST, SUMS}
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ArchiveSessions:
    """The databases a contributor reads: ``main`` and ``monitoring`` (the same session
    when the monitoring tables live in the main database)."""

    main: Any
    monitoring: Any


@dataclass(frozen=True)
class ArchiveFile:
    """One file of the bundle, as a contributor gives it."""

    path_in_bundle: str
    content: bytes
    description_zh: str
    description_en: str
    source: str


@dataclass
class Manifest:
    """What was written: the bundle directory and the manifest's content."""

    directory: Path
    year: int
    built_at: str
    version: str
    files: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"bundle": self.directory.name, "year": self.year, "built_at": self.built_at,
                "version": self.version, "files": self.files}


class ArchiveError(ValueError):
    """A contributor gave a bad file list (unsafe or duplicate path)."""


class ArchiveExists(FileExistsError):
    """The bundle directory exists and is not empty: an archive is never rewritten."""


Contributor = Callable[[ArchiveSessions, int], list[ArchiveFile]]


def bundle_name(year: int) -> str:
    return f"learning-city-archive-{int(year)}"


def project_version() -> str:
    """The installed project's version (``unknown`` when it is not installed)."""
    try:
        return version("learningcity")
    except PackageNotFoundError:
        return "unknown"


def year_end(year: int) -> dt.datetime:
    """The fixed date written into the year's XLSX and PDF files (31 Dec, 00:00 UTC)."""
    return dt.datetime(int(year), 12, 31, tzinfo=dt.UTC)


def contributors() -> dict[str, Contributor]:
    """Name -> contributor of every registered section, by name."""
    return {ep.name: ep.load() for ep in sorted(entry_points(group=GROUP),
                                                key=lambda e: e.name)}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_path(path: str) -> str:
    p = PurePosixPath(path)
    if (not path or p.is_absolute() or "\\" in path or str(p) != path
            or not all(_SAFE_PART.match(part) for part in p.parts) or path in _RESERVED):
        raise ArchiveError(f"unsafe path in bundle: {path!r}")
    return path


def safe_name(text: str) -> str:
    """A file-name part made of letters, digits, ``.``, ``_`` and ``-`` only."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "file"
    return out[:120]


def gather(sessions: ArchiveSessions, year: int,
           sections: dict[str, Contributor] | None = None,
           progress: Callable[[str], None] = lambda m: None) -> list[ArchiveFile]:
    """Every contributor's files of the year, sorted by path; refuses unsafe or
    duplicate paths (:class:`ArchiveError`)."""
    files: dict[str, ArchiveFile] = {}
    for name, contribute in sorted((sections if sections is not None
                                    else contributors()).items()):
        progress(f"{name}: gathering {year}")
        found = list(contribute(sessions, year))
        for f in found:
            path = _check_path(f.path_in_bundle)
            if path in files:
                raise ArchiveError(f"{name}: path {path!r} given twice")
            files[path] = f
        progress(f"{name}: {len(found)} files")
    return [files[p] for p in sorted(files)]


def canonical_json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n"
            ).encode("utf-8")


def build_archive(sessions: ArchiveSessions, year: int, out_dir: Path | str, *,
                  sections: dict[str, Contributor] | None = None,
                  now: dt.datetime | None = None,
                  progress: Callable[[str], None] = lambda m: None) -> Manifest:
    """Write the year's bundle under ``out_dir`` and return its manifest.

    Raises :class:`ArchiveExists` (nothing written) when the bundle directory exists
    and is not empty, :class:`ArchiveError` on a contributor's bad path. ``sections``
    replaces the registered contributors (tests); ``now`` is the build time.
    """
    out_dir = Path(out_dir)
    target = out_dir / bundle_name(year)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ArchiveExists(f"{target} exists and is not empty; an archive is never "
                            "rewritten: build into another directory")
    files = gather(sessions, year, sections, progress)
    built = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    manifest = Manifest(target, int(year), built.isoformat().replace("+00:00", "Z"),
                        project_version())
    manifest.files = [{"path": f.path_in_bundle, "size": len(f.content),
                       "sha256": sha256(f.content), "description_zh": f.description_zh,
                       "description_en": f.description_en, "source": f.source}
                      for f in files]
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=out_dir))
    try:
        for f in files:
            path = work / f.path_in_bundle
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.content)
        body = canonical_json(manifest.as_dict())
        (work / MANIFEST).write_bytes(body)
        sums = sorted([(MANIFEST, sha256(body))]
                      + [(f["path"], f["sha256"]) for f in manifest.files])
        (work / SUMS).write_text("".join(f"{h}  {p}\n" for p, h in sums), encoding="utf-8")
        for d in [work, *(p for p in work.rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        if target.is_dir():
            target.rmdir()  # empty (checked above); fails if something appeared since
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    progress(f"written {target} ({len(files)} files)")
    return manifest


def _files_on_disk(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def verify_archive(directory: Path | str) -> list[str]:
    """Problems of a bundle (empty when it verifies): every file of the manifest present
    with its size and SHA-256, no file the manifest does not list, ``SHA256SUMS`` matching
    the files (the manifest's own line included)."""
    directory = Path(directory)
    try:
        body = (directory / MANIFEST).read_bytes()
        data = json.loads(body)
        listed = {f["path"]: f for f in data["files"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST}: unreadable ({type(exc).__name__}: {exc})"]
    problems: list[str] = []
    for path, entry in sorted(listed.items()):
        file = directory / path
        if not file.is_file():
            problems.append(f"missing: {path}")
            continue
        content = file.read_bytes()
        if len(content) != entry.get("size") or sha256(content) != entry.get("sha256"):
            problems.append(f"changed: {path}")
    for path in sorted(_files_on_disk(directory) - set(listed) - _RESERVED):
        problems.append(f"extra: {path}")
    try:
        sums = {}
        for line in (directory / SUMS).read_text(encoding="utf-8").splitlines():
            digest, _sep, path = line.partition("  ")
            sums[path] = digest
    except OSError:
        return [*problems, f"missing: {SUMS}"]
    expected = {p: e.get("sha256") for p, e in listed.items()} | {MANIFEST: sha256(body)}
    for path in sorted(set(sums) | set(expected)):
        if sums.get(path) != expected.get(path):
            problems.append(f"{SUMS}: wrong or missing line for {path}")
    return problems


# ------------------------------------------------------------------ fixed dates

_CORE_DATES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def fixed_xlsx(body: bytes, when: dt.datetime) -> bytes:
    """An XLSX workbook with its document properties (created, modified) and every zip
    entry's time set to ``when``, so the same data gives the same bytes."""
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _CORE_DATES.sub(lambda m: m.group(1) + stamp + m.group(3), data)
            entry = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, data)
    return out.getvalue()


def pdf_dates_html(document: str, when: dt.datetime) -> str:
    """The HTML document with ``dcterms.created``/``dcterms.modified`` meta tags, which
    WeasyPrint writes as the PDF's creation and modification dates (instead of none)."""
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metas = (f'<meta name="dcterms.created" content="{stamp}">'
             f'<meta name="dcterms.modified" content="{stamp}">')
    return document.replace("<head>", "<head>" + metas, 1)


def files_of(items: Iterable[ArchiveFile]) -> list[ArchiveFile]:
    """``items`` sorted by path (contributors return them in this order)."""
    return sorted(items, key=lambda f: f.path_in_bundle)
