"""Indicator values from other packages: the entry-point group
``learningcity.indicator_sources``.

A source is a name (the indicator's ``source``, e.g. ``organisations``) mapped to a
function ``(session, year) -> {district_code: (numerator, denominator[, simulated])}``;
the session is the main database's. ``simulated`` (default False) says the value counts
demo rows, so the pages label it as they label the demo's reports. The organisations
register (``monitoring/organisations/``) registers ``organisations``: per district and
year, the communities/villages recognised as learning-type and the total. When a source
is registered, the indicator's values come from it and units do not report them;
otherwise they come from the district reports.

Register one in ``setup.cfg``::

    learningcity.indicator_sources =
        organisations = monitoring.organisations.recognition:learning_community_indicator

Tests pass ``providers=`` explicitly instead (entry points need an installed package).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

GROUP = "learningcity.indicator_sources"
Provider = Callable[[Any, int], Mapping[str, tuple[float, ...]]]


def registered() -> dict[str, Provider]:
    """The installed sources, by name (loaded on each call: cheap, and a test's
    monkeypatched group is seen)."""
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def provider_for(source: str, providers: Mapping[str, Provider] | None = None
                 ) -> Provider | None:
    """The function giving values of ``source``, or None when nothing provides it."""
    found = registered() if providers is None else providers
    return found.get(source)


def values(source: str, db: Any, year: int,
           providers: Mapping[str, Provider] | None = None
           ) -> dict[str, tuple[float, float, bool]] | None:
    """``{district: (numerator, denominator, simulated)}`` from the provider, or None
    without one. A provider's malformed answer raises ValueError naming the district."""
    fn = provider_for(source, providers)
    if fn is None:
        return None
    out: dict[str, tuple[float, float, bool]] = {}
    for district, cell in dict(fn(db, year)).items():
        try:
            if len(cell) not in (2, 3):
                raise ValueError
            num, den = (float(cell[0]), float(cell[1]))
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"indicator source {source!r}, district {district!r}: "
                             f"expected (numerator, denominator[, simulated]), got "
                             f"{cell!r}") from None
        if num < 0 or den < 0 or num > den:
            raise ValueError(f"indicator source {source!r}, district {district!r}: "
                             f"0 <= numerator <= denominator, got {num:g}/{den:g}")
        out[str(district)] = (num, den, bool(cell[2]) if len(cell) == 3 else False)
    return out
