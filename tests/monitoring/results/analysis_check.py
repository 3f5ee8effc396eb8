"""Checks an analysis file against the published cells: with the project's estimator
(to 1e-9) and, where R is installed, with the generated R script (R's survey and mitools,
to 1e-6). Used by the demo-results test, which builds real closed campaigns."""
from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from monitoring.results import aggregate as agg
from monitoring.results.analysis import export_analysis
from monitoring.results.respondents import CampaignInfo, RespondentData

#: relative tolerance between the published cells and the ones recomputed from the file
PROJECT_TOL = 1e-9


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(path.read_bytes()), encoding="utf-8-sig",
                       keep_default_na=False, na_values=[""])


def _close(a: Any, b: Any) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None or (isinstance(a, float) and math.isnan(a))
    return a is not None and abs(float(a) - float(b)) <= PROJECT_TOL * max(abs(float(b)), 1e-12)


def recompute(directory: Path, design: dict[str, Any], catalogue: Any) -> list[dict[str, Any]]:
    """The cells from the analysis file alone, with the project's estimator."""
    table = read_csv(directory / "respondents.csv")
    frame = table.rename(columns={"rid": "respondent"})
    frame["respondent"] = frame["respondent"].astype(str)
    for col in ("stratum", "psu", "district", "group"):
        if col in frame.columns:
            frame[col] = frame[col].astype(object).where(frame[col].notna())
            frame[col] = frame[col].map(lambda v: v if v is None else str(v))
    data = RespondentData(frame=frame, campaign=CampaignInfo(
        code="x", district=str(frame["district"].iloc[0]), name="x", closes_at=None),
        design=design)
    return agg.compute_aggregates(data, catalogue)


def check_analysis(db: Any, mdb: Any, code: str, out: Path) -> dict[str, Any]:
    """Export ``code``, recompute its cells from the file and compare (and run R)."""
    from monitoring.results.indicators import load_catalogue
    from monitoring.results.respondents import respondent_table

    done = export_analysis(db, mdb, code, out)
    published = read_csv(out / "published.csv")
    table = read_csv(out / "respondents.csv")
    assert "respondent" not in table.columns and "street" not in table.columns
    assert len(table) == done.n_respondents
    design = respondent_table(db, code).design
    rows = recompute(out, design, load_catalogue(db))
    ours = {(r["measure"], r["dimension"], r["group_value"], r["district"]): r for r in rows}
    compared = 0
    census = published["method"].astype(str).str.startswith("census")
    # frame indicators count the campaign's frame, not its respondents: not in the file
    for cell in published[~census].to_dict("records"):
        key = (cell["measure"], cell["dimension"],
               "" if pd.isna(cell["group_value"]) else str(cell["group_value"]),
               str(cell["district"]))
        mine = ours[key]
        assert int(mine["n"]) == int(cell["n"]), key
        assert bool(mine["suppressed"]) == bool(cell["suppressed"]), key
        for col in ("estimate", "se", "ci_low", "ci_high"):
            assert _close(mine[col], None if pd.isna(cell[col]) else cell[col]), (key, col)
        compared += 1
    frame_cells = {(r["measure"], r["dimension"], r["group_value"], r["district"])
                   for r in rows if r["method"] == "not available"}
    assert compared == int((~census).sum()) == len(rows) - len(frame_cells)
    result = {"cells": compared, "r": None}
    rscript = shutil.which("Rscript")
    if rscript is None:
        if os.environ.get("CI"):
            pytest.fail("Rscript is not installed (.ci/run installs r-cran-survey)")
        return result
    run = subprocess.run([rscript, "reproduce.R"], cwd=out, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "largest relative difference" in run.stdout
    result["r"] = run.stdout.strip()
    return result
