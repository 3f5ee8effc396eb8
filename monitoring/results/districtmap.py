"""District boundaries (an uploaded GeoJSON) and the district map drawn from them as SVG."""
from __future__ import annotations

from sqlalchemy.orm import Session


def load_demo(db: Session) -> None:
    """Store the demo city's schematic boundaries when none are stored (idempotent)."""
