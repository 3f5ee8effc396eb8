"""Shared fixtures for tests of scoring/params, models, estimation, plausible."""

import pytest

from scoring.params import ItemParams


def make_mixed_bank() -> ItemParams:
    """Six items, one per model: 2PL, 3PL, GRM (4 cat), GPCM (4 cat, reversed steps),
    PCM (3 cat), Rasch."""
    return ItemParams.from_arrays(
        item_ids=["d2", "d3", "grm", "gpcm", "pcm", "rasch"],
        model=["2pl", "3pl", "grm", "gpcm", "pcm", "rasch"],
        a=[1.3, 1.7, 1.1, 0.8, 1.0, 1.0],
        b=[[0.3], [-0.5], [-1.0, 0.2, 1.5], [0.5, -0.7, 1.0], [0.2, 0.4], [1.0]],
        c=[0, 0.2, 0, 0, 0, 0],
    )


@pytest.fixture
def mixed_bank() -> ItemParams:
    return make_mixed_bank()
