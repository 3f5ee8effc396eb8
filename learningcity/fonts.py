"""The CJK font the charts draw Chinese with, found as a FILE and registered with matplotlib.

matplotlib only knows the fonts in its font cache, which is built the first time it runs and
not rebuilt when a font is installed later (pip first, ``apt-get install fonts-wqy-microhei``
after: Chinese then drew as empty boxes).  So the font is looked up on the system by path
(known locations first, then fontconfig) and added to matplotlib's font manager by path, once
per process, whatever the cache holds.  Start-up (:mod:`learningcity.startup`) checks it is
there; production refuses to start without one.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

#: where Debian/Ubuntu packages put CJK fonts with Simplified Chinese, preferred first
KNOWN_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",          # fonts-wqy-microhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",            # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/arphic/uming.ttc",              # fonts-arphic-uming
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
#: what to tell an administrator when no CJK font is found
INSTALL_HINT = "apt-get install fonts-wqy-microhei"
#: file suffixes matplotlib can read (a .ttc collection included)
_SUFFIXES = (".ttf", ".ttc", ".otf")

_LOCK = threading.Lock()
_registered: dict[str, str | None] = {}


class MissingCJKFont(RuntimeError):
    """No font able to draw Chinese is installed (charts would draw empty boxes)."""


def _fontconfig_files() -> list[Path]:
    """Font files fontconfig says cover Chinese (``fc-list :lang=zh file``), or [] without it.

    ``fc-match ':lang=zh'`` is not used: it answers DejaVu Sans when nothing better matches."""
    exe = shutil.which("fc-list")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, ":lang=zh", "file"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = sorted({line.split(":", 1)[0].strip() for line in out.splitlines() if line.strip()})
    # regular sans faces before mono, bold or serif ones
    files.sort(key=lambda f: any(w in f.lower() for w in ("mono", "bold", "serif")))
    return [Path(f) for f in files if f.lower().endswith(_SUFFIXES)]


def cjk_font_path(candidates: Sequence[str] | None = None,
                  use_fontconfig: bool = True) -> Path | None:
    """The file of an installed font that draws Simplified Chinese, or None.

    ``candidates`` (default :data:`KNOWN_PATHS`) are tried in order, then fontconfig's list."""
    for name in KNOWN_PATHS if candidates is None else candidates:
        path = Path(name)
        if path.is_file():
            return path
    if use_fontconfig:
        for path in _fontconfig_files():
            if path.is_file():
                return path
    return None


def register_cjk_font(path: Path | None = None) -> str | None:
    """Add the CJK font file to matplotlib's font manager (once per process) and return its
    family name (e.g. ``"WenQuanYi Micro Hei"``), or None when no CJK font is installed.

    ``path`` names the file; by default :func:`cjk_font_path` finds one."""
    key = str(path) if path is not None else ""
    with _LOCK:
        if key in _registered:
            return _registered[key]
        found = path if path is not None else cjk_font_path()
        family = None
        if found is not None:
            # matplotlib adds about 0.3 s of start-up; only chart rendering needs it
            from matplotlib import font_manager

            try:
                if not any(f.fname == str(found) for f in font_manager.fontManager.ttflist):
                    font_manager.fontManager.addfont(str(found))
                family = font_manager.FontProperties(fname=str(found)).get_name()
            except (OSError, RuntimeError, ValueError) as exc:  # not a font matplotlib reads
                log.warning("CJK font %s cannot be read by matplotlib: %s", found, exc)
            else:
                log.debug("CJK font for charts: %s (%s)", family, found)
        _registered[key] = family
        return family


def require_cjk_font() -> Path:
    """The CJK font's file; raises :class:`MissingCJKFont` naming what to install."""
    path = cjk_font_path()
    if path is None:
        raise MissingCJKFont(
            "no CJK font found: monitoring charts would draw Chinese as empty boxes. "
            f"Install one ({INSTALL_HINT}) and start again; looked in "
            f"{', '.join(KNOWN_PATHS)} and fontconfig (fc-list :lang=zh).")
    return path
