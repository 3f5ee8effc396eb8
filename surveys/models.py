"""Database tables of surveys (main database)."""
from __future__ import annotations
