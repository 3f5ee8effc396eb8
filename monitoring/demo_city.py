"""The simulated demo city: yearly campaigns 2023-2025 in every demo district."""
from __future__ import annotations

from sqlalchemy.orm import Session


def load(db: Session) -> None:
    """Write the simulated city's published cells when they are missing (idempotent)."""
