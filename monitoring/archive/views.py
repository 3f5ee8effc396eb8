"""The archive page (city office: monitors and admins): built bundles, a build button,
the manifests' downloads (thin: parse, call, render).

Bundles live in the directory of the setting ``monitoring.archive_directory`` (default
``var/archive``). The build runs in the request: the demo year takes a few seconds
(most of it the report PDF); a city with many evidence files builds from the command
line (``learningcity archive build``), which writes the same bundle.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import Response

from learningcity import audit
from learningcity.i18n import _, flash
from monitoring.archive import bundle

T = "monitoring:templates/"
SETTING = "monitoring.archive_directory"
_BUNDLE = re.compile(r"^learning-city-archive-(\d{4})$")


class ArchiveArea:
    """The archive: only the city office builds and reads it."""

    __acl__ = [(Allow, "role:admin", "archive"), (Allow, "role:monitor", "archive")]

    def __init__(self, request: Any) -> None:
        self.request = request


def archive_directory(request: Any) -> Path:
    return Path(str(request.registry.settings.get(SETTING) or "var/archive"))


def built_archives(directory: Path) -> list[dict[str, Any]]:
    """The bundles under ``directory``, newest year first: name, year, build time, file
    count and total size (from each manifest; an unreadable one is shown as such)."""
    out = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.iterdir(), reverse=True):
        m = _BUNDLE.match(path.name)
        if not m or not path.is_dir():
            continue
        try:
            data = json.loads((path / bundle.MANIFEST).read_text(encoding="utf-8"))
            files = data["files"]
            built = str(data.get("built_at", ""))
            out.append({"name": path.name, "year": int(m.group(1)),
                        "built_at": built[:16].replace("T", " "), "files": len(files),
                        "size": sum(int(f["size"]) for f in files), "ok": True})
        except (OSError, ValueError, KeyError, TypeError):
            out.append({"name": path.name, "year": int(m.group(1)), "built_at": "",
                        "files": 0, "size": 0, "ok": False})
    return out


def _page(request: Any, problems: list[str] | None = None, status: int = 200,
          year: str = "") -> dict[str, Any]:
    request.response.status_int = status
    this = dt.date.today().year
    return {"archives": built_archives(archive_directory(request)),
            "problems": problems or [], "year": year or str(this - 1),
            "years": list(range(this, this - 10, -1))}


def archive_page(request: Any) -> dict[str, Any]:
    """``/monitoring/archive``: the built bundles and the build form."""
    return _page(request)


def archive_build(request: Any) -> Any:
    """Build the bundle of the posted year; an existing bundle is refused (409)."""
    raw = str(request.POST.get("year", "")).strip()
    if not re.fullmatch(r"\d{4}", raw):
        return _page(request, [request.translate(_("year: a year such as 2025"))], 400, raw)
    year = int(raw)
    try:
        manifest = bundle.build_archive(
            bundle.ArchiveSessions(request.dbsession, request.monitoring_db), year,
            archive_directory(request))
    except bundle.ArchiveExists:
        return _page(request, [request.translate(_(
            "The archive of ${year} already exists and is never rewritten; build it from the "
            "command line into another directory.", mapping={"year": year}))], 409, raw)
    except bundle.ArchiveError as exc:
        return _page(request, [str(exc)], 500, raw)
    audit.record(request.dbsession, actor=request.identity.username, action="archive.build",
                 target=manifest.directory.name,
                 detail={"year": year, "files": len(manifest.files), "via": "web",
                         "built_at": manifest.built_at})
    flash(request, _(
        "Archive ${year} built: ${files} files.",
        mapping={"year": year, "files": len(manifest.files)}))
    return HTTPSeeOther(request.route_url("archive.list"))


def manifest_download(request: Any) -> Response:
    """The manifest of one bundle (JSON, as written)."""
    name = request.matchdict["bundle"]
    path = archive_directory(request) / name / bundle.MANIFEST
    if not _BUNDLE.match(name) or not path.is_file():
        raise HTTPNotFound()
    response = Response(path.read_bytes(), content_type="application/json", charset="utf-8")
    response.content_disposition = f'attachment; filename="{name}-manifest.json"'
    response.cache_control = "no-store"
    return response


def includeme(config: Any) -> None:
    area = {"factory": ArchiveArea}
    config.add_route("archive.list", "/monitoring/archive", **area)
    config.add_route("archive.build", "/monitoring/archive/build", **area)
    config.add_route("archive.manifest",
                     "/monitoring/archive/{bundle:learning-city-archive-\\d{4}}/manifest.json",
                     **area)
    config.add_view(archive_page, route_name="archive.list", permission="archive",
                    renderer=T + "archive.pt", request_method="GET", context=ArchiveArea)
    config.add_view(archive_build, route_name="archive.build", permission="archive",
                    renderer=T + "archive.pt", request_method="POST", context=ArchiveArea)
    config.add_view(manifest_download, route_name="archive.manifest", permission="archive",
                    request_method="GET", context=ArchiveArea)
    config.registry.setdefault("staff_links", []).append(
        {"route": "archive.list", "label": _("Yearly archive"), "order": 38,
         "roles": ("admin", "monitor")})
