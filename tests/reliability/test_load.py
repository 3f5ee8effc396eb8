"""Short form of the load suite (CI): 20 residents from invitation codes for 10 s.

The fault suites' short forms are in test_load_faults.py and test_load_restart.py, one
file each so that pytest-xdist (``--dist loadfile``) runs them on different workers.
"""
from __future__ import annotations

import asyncio

import pytest

from loadtest import __main__ as cli
from loadtest import residents

from .loadshort import in_own_thread, postgres_or_skip, short_args


def test_load_short_form_loses_nothing(capsys):
    postgres_or_skip()
    figures = in_own_thread(cli.run, short_args(duration=10.0))
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


def test_the_client_refuses_non_loopback_targets():
    with pytest.raises(ValueError, match="loopback"):
        in_own_thread(asyncio.run,
                      residents.run_residents("http://example.org", residents.Config()))
