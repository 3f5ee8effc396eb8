"""The city's districts as the packages use them: look-up and listing as plain records.

Packages read districts only through these functions, never the ``district`` table.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .models import District


@dataclass(frozen=True)
class DistrictInfo:
    """A district: its code, names in both languages and population (if known)."""

    code: str
    name_zh: str
    name_en: str
    population: int | None = None

    def name(self, locale: str) -> str:
        """The name in the page's language (English for ``en*``, else Chinese)."""
        return self.name_en if locale.startswith("en") else self.name_zh


def _info(row: District) -> DistrictInfo:
    return DistrictInfo(code=row.code, name_zh=row.name_zh, name_en=row.name_en,
                        population=row.population)


def get_district(db: Session, code: str) -> DistrictInfo | None:
    """The district with this code, or None."""
    row = db.get(District, code) if code else None
    return _info(row) if row is not None else None


def list_districts(db: Session) -> list[DistrictInfo]:
    """Every district, by code."""
    return [_info(r) for r in db.scalars(sa.select(District).order_by(District.code))]


def district_codes(db: Session) -> list[str]:
    """Every district code, sorted."""
    return list(db.scalars(sa.select(District.code).order_by(District.code)))


def add_district(db: Session, code: str, name_zh: str, name_en: str,
                 population: int | None = None) -> bool:
    """Add a district unless it exists (demo loaders, imports); True when added."""
    if db.get(District, code) is not None:
        return False
    db.add(District(code=code, name_zh=name_zh, name_en=name_en, population=population))
    return True
