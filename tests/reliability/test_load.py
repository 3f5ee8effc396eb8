"""Short forms of the load and fault suites (CI): real gunicorn, real PostgreSQL.

The full runs (``python -m loadtest run --residents 200 --duration 120`` and
``python -m loadtest faults``) and their figures are in docs/reliability.md. Here the
integrity checks must hold exactly; latency is reported, not asserted, because CI
shares its two cores with everything else.
"""
from __future__ import annotations

import argparse
import os

import pytest
import sqlalchemy as sa

from loadtest import __main__ as cli
from loadtest import faults, harness


def _postgres_or_skip() -> None:
    try:
        engine = sa.create_engine(harness.PG, poolclass=sa.pool.NullPool)
        with engine.connect():
            pass
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {harness.PG} is unreachable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unreachable: {exc}")


def _args(**extra) -> argparse.Namespace:
    values = {"residents": 20, "duration": 15.0, "think": 0.5, "workers": 2, "threads": 4,
              "entry": "invitation", "seed": 7, "json_out": None, "only": None}
    values.update(extra)
    return argparse.Namespace(**values)


def test_load_short_form_loses_nothing(capsys):
    _postgres_or_skip()
    figures = cli.run(_args(duration=10.0))
    assert figures["answers"] > 50, figures  # the run did real work
    assert figures["errors"] == {}, figures["errors"]
    assert figures["db_problems"] == [] and figures["resume_problems"] == []
    assert figures["acknowledged_checked"] == figures["answers"]
    assert figures["latency_ms"]["answer"]["n"] >= figures["answers"]
    # residents came in through invitation codes of a drawn campaign, some filled in the
    # background form the frame could not prefill, some opened their link again
    assert figures["entry"] == "invitation"
    assert figures["latency_ms"]["redeem"]["n"] == figures["sessions"]
    assert figures["events"].get("background_form", 0) > 0
    print(capsys.readouterr().out)


def test_kill_worker_and_burst_short_form(capsys):
    _postgres_or_skip()
    assert faults.main(_args(only=["kill-worker", "burst"])) == 0, capsys.readouterr().out


def test_restart_postgres_short_form(capsys):
    """Needs root and the PostgreSQL server binaries (a private cluster is restarted)."""
    _postgres_or_skip()
    reason = faults.can_run_private_cluster()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"restart-postgres cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    assert faults.main(_args(only=["restart-postgres"], duration=10.0)) == 0, \
        capsys.readouterr().out


def test_the_client_refuses_non_loopback_targets():
    import asyncio

    from loadtest import residents

    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(residents.run_residents("http://example.org", residents.Config()))
