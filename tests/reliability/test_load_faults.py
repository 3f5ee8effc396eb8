"""Short form of the fault suite (CI): a worker killed under load, duplicate bursts."""
from __future__ import annotations

from loadtest import faults

from .loadshort import in_own_thread, postgres_or_skip, short_args


def test_kill_worker_and_burst_short_form(capsys):
    postgres_or_skip()
    assert in_own_thread(faults.main, short_args(only=["kill-worker", "burst"],
                                                     duration=10.0)) == 0, \
        capsys.readouterr().out
