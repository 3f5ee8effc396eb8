"""Maintaining the gettext catalogs: extract with lingua, merge and compile with Babel.

``learningcity i18n update`` re-extracts every package's strings into
``<package>/locale/<domain>.pot`` and merges them into the zh_CN and en
catalogs; ``learningcity i18n compile`` writes the .mo files the app reads
(they are committed, so a fresh install needs no build step).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import click
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

LOCALES = ("zh_CN", "en")
ROOT = Path(__file__).resolve().parent.parent
#: package folder -> gettext domain; every package with user-facing text is listed here.
CATALOGS = {"learningcity": "learningcity", "itembank": "learningcity", "scoring": "scoring",
            "assessment": "learningcity", "surveys": "learningcity",
            "monitoring": "learningcity"}


def locale_dir(package: str) -> Path:
    return ROOT / package / "locale"


def extract(package: str, domain: str) -> Path:
    """Run lingua's pot-create over the package's .py and .pt files."""
    pot = locale_dir(package) / f"{domain}.pot"
    pot.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["pot-create", "-d", domain, "-o", str(pot), str(ROOT / package)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        if "No translatable strings" not in done.stderr + done.stdout:
            raise RuntimeError(f"pot-create failed for {package}: {done.stderr.strip()}")
        with pot.open("wb") as fh:  # a package with no strings yet: an empty template
            write_po(fh, Catalog(domain=domain), omit_header=False)
    return pot


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def merge(package: str, domain: str, pot: Path) -> None:
    template = read_catalog(pot)
    for locale in LOCALES:
        po = locale_dir(package) / locale / "LC_MESSAGES" / f"{domain}.po"
        po.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_catalog(po, locale) if po.exists() else Catalog(locale=locale,
                                                                        domain=domain)
        catalog.update(template, update_header_comment=False)
        with po.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, ignore_obsolete=True)


def compile_catalogs() -> list[Path]:
    written = []
    for package, domain in CATALOGS.items():
        for locale in LOCALES:
            po = locale_dir(package) / locale / "LC_MESSAGES" / f"{domain}.po"
            catalog = read_catalog(po, locale)
            mo = po.with_suffix(".mo")
            with mo.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            written.append(mo)
    return written


@click.group()
def i18n() -> None:
    """Translation catalogs (zh-CN default, English second)."""


@i18n.command("update")
def update_cmd() -> None:
    """Extract strings and merge them into every catalog (then translate and compile)."""
    for package, domain in CATALOGS.items():
        merge(package, domain, extract(package, domain))
        click.echo(f"updated {package} catalogs")


@i18n.command("compile")
def compile_cmd() -> None:
    """Compile .po catalogs into the .mo files the app reads."""
    for mo in compile_catalogs():
        click.echo(f"wrote {mo.relative_to(ROOT)}")
