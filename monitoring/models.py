"""Database tables of monitoring (main database)."""
from __future__ import annotations
