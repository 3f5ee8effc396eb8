"""Fixtures for the item bank: a small bank with domains, an instrument and items."""
from __future__ import annotations

import json
from typing import Any

import pytest

from itembank.demo_content import DOMAINS


def make_items(n_per_domain: int = 6, domains: tuple[str, ...] = ("digital", "numeracy"),
               pilot: int = 0) -> list[dict[str, Any]]:
    """Simple valid single-choice items in the JSON import format."""
    items = []
    for domain in domains:
        for k in range(1, n_per_domain + 1):
            code = f"{domain[:3].upper()}-{k:03d}"
            items.append({
                "code": code, "domain": domain, "subdomain": "basics", "type": "single_choice",
                "stem": {"zh": f"题目 {code}", "en": f"Question {code}"},
                "options": [{"zh": f"选项{o}", "en": f"Option {o}"} for o in range(1, 5)],
                "key": 1 + k % 4, "tags": ["test"], "author": "tests",
                "status": "pilot" if k > n_per_domain - pilot else "operational"})
    return items


@pytest.fixture
def bank(dbsession: Any, tmp_path) -> dict[str, Any]:
    """Domains, the LLA instrument and 12 operational items, committed."""
    from itembank.importing import read_item_file
    from itembank.models import Instrument
    from itembank.services import ensure_domains, import_items

    ensure_domains(dbsession, DOMAINS)
    instrument = Instrument(code="LLA", name_zh="测评", name_en="Test", kind="ability",
                            blueprint={"exposure": {"max_rate": 0.5}})
    dbsession.add(instrument)
    path = tmp_path / "items.json"
    path.write_text(json.dumps(make_items(), ensure_ascii=False), encoding="utf-8")
    import_items(dbsession, read_item_file(path), "tests")
    dbsession.commit()
    return {"instrument": instrument, "path": path}

