"""What the short forms of the load and fault suites share (CI): real gunicorn, real PostgreSQL.

The full runs (``python -m loadtest run --residents 200 --duration 120`` and
``python -m loadtest faults``) and their figures are in docs/reliability.md. Here the
integrity checks must hold exactly; latency is reported, not asserted, because CI
shares its two cores with everything else.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
from typing import Any

import pytest
import sqlalchemy as sa

from loadtest import harness


def postgres_or_skip() -> None:
    try:
        engine = sa.create_engine(harness.PG, poolclass=sa.pool.NullPool)
        with engine.connect():
            pass
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {harness.PG} is unreachable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unreachable: {exc}")


def short_args(**extra) -> argparse.Namespace:
    values = {"residents": 20, "duration": 15.0, "think": 0.5, "workers": 2, "threads": 4,
              "entry": "invitation", "seed": 7, "json_out": None, "only": None}
    values.update(extra)
    return argparse.Namespace(**values)




def in_own_thread(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a fresh thread: the suites call ``asyncio.run``, which refuses
    to start where an event loop is already running (Playwright's sync API leaves one
    running in this worker's main thread after a browser test)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()
