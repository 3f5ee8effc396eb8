"""Short form of the PostgreSQL-restart fault (CI): a private cluster restarted under load."""
from __future__ import annotations

import os

import pytest

from loadtest import faults

from .loadshort import in_own_thread, postgres_or_skip, short_args


def test_restart_postgres_short_form(capsys):
    """Needs root and the PostgreSQL server binaries (a private cluster is restarted)."""
    postgres_or_skip()
    reason = faults.can_run_private_cluster()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"restart-postgres cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    assert in_own_thread(faults.main, short_args(only=["restart-postgres"],
                                                     duration=10.0)) == 0, \
        capsys.readouterr().out
