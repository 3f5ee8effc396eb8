"""End-to-end tests of the scoring command line (calibrate, score, dif, link).

Commands are run with click's CliRunner inside a temporary directory, on small simulated
2PL data sets (20 items), so the whole file runs in a few seconds.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from scoring.cli import calibrate, dif, link, score
from scoring.io import read_params, write_params
from scoring.params import ItemParams

N_ITEMS = 20
ITEMS = [f"Q{j + 1}" for j in range(N_ITEMS)]


# ---------------------------------------------------------------------------- data

def true_bank(seed: int = 7) -> ItemParams:
    rng = np.random.default_rng(seed)
    return ItemParams.from_arrays(
        item_ids=ITEMS, model="2pl", a=rng.uniform(0.8, 2.0, N_ITEMS),
        b=np.clip(rng.normal(0.0, 1.0, N_ITEMS), -2.0, 2.0))


def simulate(bank: ItemParams, theta: np.ndarray, seed: int,
             shift: dict[int, float] | None = None) -> np.ndarray:
    """0/1 responses under the 2PL (own formula, independent of scoring.models);
    ``shift`` adds to the difficulty of some item columns (planted DIF)."""
    b = bank.b[:, 0].copy()
    matrix_b = np.tile(b, (theta.size, 1))
    for j, delta in (shift or {}).items():
        matrix_b[:, j] += delta
    p = 1.0 / (1.0 + np.exp(-bank.a * (theta[:, None] - matrix_b)))
    return (np.random.default_rng(seed).random(p.shape) < p).astype(int)


def write_wide(path: Path, matrix: np.ndarray, groups: list[str] | None = None,
               persons: list[str] | None = None) -> None:
    persons = persons or [f"p{i + 1:04d}" for i in range(matrix.shape[0])]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id"] + (["grp"] if groups else []) + ITEMS[: matrix.shape[1]])
        for i, row in enumerate(matrix):
            writer.writerow([persons[i]] + ([groups[i]] if groups else [])
                            + ["" if np.isnan(v) else int(v) for v in row.astype(float)])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sim() -> dict[str, object]:
    """600 persons x 20 2PL items."""
    bank = true_bank()
    theta = np.random.default_rng(11).normal(size=600)
    return {"bank": bank, "theta": theta, "x": simulate(bank, theta, seed=12)}


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """Run in a temporary directory so file names in messages are the short names."""
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def run(command, args: list[str]) -> Result:
    return CliRunner().invoke(command, args, catch_exceptions=False)


# ---------------------------------------------------------------------------- registration

def test_commands_are_registered_for_the_learningcity_root() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="learningcity.commands")}
    for name in ("calibrate", "score", "dif", "link"):
        assert found.get(name) == f"scoring.cli:{name}"


# ---------------------------------------------------------------------------- calibrate/score

def test_calibrate_then_score(workdir: Path, sim: dict) -> None:
    write_wide(workdir / "responses.csv", sim["x"])
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet: no progress bar, no messages
    params = read_params("params.csv")
    bank = sim["bank"]
    assert list(params.item_ids) == ITEMS
    # 600 persons: b recovered well, a reasonably (tolerances from repeated simulation)
    assert np.corrcoef(params.b[:, 0], bank.b[:, 0])[0, 1] > 0.95
    assert np.corrcoef(params.a, bank.a)[0, 1] > 0.7
    assert np.all(np.isfinite(params.se_a)) and np.all(params.se_b[:, 0] > 0)
    rows = read_csv(workdir / "params.csv")
    assert list(rows[0]) == ["item_id", "model", "a", "b", "c", "se_a", "se_b", "se_c",
                             "infit", "outfit", "sx2", "sx2_p", "latent_mean", "latent_sd"]
    # a 2PL calibration fixes the latent distribution at N(0, 1)
    assert (params.latent_mean, params.latent_sd) == (0.0, 1.0)
    infit = np.array([float(r["infit"]) for r in rows])
    assert np.all((infit > 0.7) & (infit < 1.3))  # data fit the model they came from
    assert all(r["sx2_p"] != "" for r in rows)

    result = run(score, ["responses.csv", "--params", "params.csv", "--method", "eap",
                         "--out", "scores.csv", "--pv", "3", "--seed", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    scores = read_csv(workdir / "scores.csv")
    assert list(scores[0]) == ["person_id", "theta", "se", "pv1", "pv2", "pv3"]
    assert [s["person_id"] for s in scores][:2] == ["p0001", "p0002"]
    theta = np.array([float(s["theta"]) for s in scores])
    se = np.array([float(s["se"]) for s in scores])
    assert np.corrcoef(theta, sim["theta"])[0, 1] > 0.8
    assert np.all((se > 0.2) & (se < 1.0))
    pvs = np.array([[float(s[f"pv{k}"]) for k in (1, 2, 3)] for s in scores])
    assert np.corrcoef(pvs[:, 0], sim["theta"])[0, 1] > 0.6  # PVs are noisier than EAP
    # the same seed gives the same plausible values
    run(score, ["responses.csv", "--params", "params.csv", "--out", "again.csv", "--pv", "3",
                "--seed", "5", "--quiet"])
    assert (workdir / "again.csv").read_text() == (workdir / "scores.csv").read_text()


@pytest.mark.parametrize("method", ["map", "mle", "wle"])
def test_score_methods(workdir: Path, sim: dict, method: str) -> None:
    write_wide(workdir / "responses.csv", sim["x"][:100])
    write_params(workdir / "params.csv", sim["bank"])
    result = run(score, ["responses.csv", "--params", "params.csv", "--method", method,
                         "--out", "scores.csv"])
    assert result.exit_code == 0, result.output
    assert "wrote scores.csv: 100 persons" in result.output
    theta = np.array([float(s["theta"]) for s in read_csv(workdir / "scores.csv")])
    assert np.corrcoef(theta, sim["theta"][:100])[0, 1] > 0.8


def test_score_with_groups_conditions_plausible_values(workdir: Path, sim: dict) -> None:
    """With --group-col the group column is not an item, and PVs keep the group gap."""
    theta = np.concatenate([np.full(300, -1.0), np.full(300, 1.0)])
    theta += np.random.default_rng(41).normal(0.0, 0.5, 600)
    groups = ["low"] * 300 + ["high"] * 300
    write_wide(workdir / "responses.csv", simulate(sim["bank"], theta, seed=42).astype(float),
               groups)
    write_params(workdir / "params.csv", sim["bank"])
    result = run(score, ["responses.csv", "--params", "params.csv", "--group-col", "grp",
                         "--out", "scores.csv", "--pv", "5", "--seed", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    pvs = np.array([[float(r[f"pv{k}"]) for k in range(1, 6)]
                    for r in read_csv(workdir / "scores.csv")])
    gap = pvs[300:].mean() - pvs[:300].mean()
    true_gap = theta[300:].mean() - theta[:300].mean()  # 2.01
    # group prior: 1.95; a common N(0, 1) prior shrinks it to 1.77 (EAP: 1.79)
    assert gap == pytest.approx(true_gap, abs=0.12)


def test_long_format_and_progress_bar(workdir: Path, sim: dict) -> None:
    x = sim["x"][:300]
    with (workdir / "long.csv").open("w", encoding="utf-8") as handle:
        handle.write("person,item,score\n")
        for i, row in enumerate(x):
            for j, v in enumerate(row):
                if (i + j) % 4:  # a quarter of the cells not administered
                    handle.write(f"p{i},{ITEMS[j]},{v}\n")
    result = CliRunner().invoke(calibrate, ["long.csv", "--model", "rasch", "--out", "p.csv"])
    assert result.exit_code == 0, result.output
    assert "300 persons, 20 items" in result.output
    assert "EM" in result.output  # tqdm writes the progress bar to stderr
    params = read_params("p.csv").subset(ITEMS)  # long format: items in order of appearance
    assert np.all(params.a == 1.0)
    assert np.corrcoef(params.b[:, 0], sim["bank"].b[:, 0])[0, 1] > 0.9


def test_anchors_round_trip(workdir: Path, sim: dict) -> None:
    """Anchoring 10 items on their true values puts a shifted sample on the true scale."""
    bank = sim["bank"]
    anchors = bank.subset(ITEMS[:10])
    write_params(workdir / "anchors.csv", anchors)
    theta = np.random.default_rng(21).normal(0.8, 1.0, 800)  # abler population
    write_wide(workdir / "responses.csv", simulate(bank, theta, seed=22).astype(float))
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--anchors", "anchors.csv", "--quiet"])
    assert result.exit_code == 0, result.output
    params = read_params("params.csv")
    # anchors are written back unchanged (to rounding: calibration works in slope-intercept)
    np.testing.assert_allclose(params.a[:10], anchors.a, rtol=1e-12)
    np.testing.assert_allclose(params.b[:10, 0], anchors.b[:, 0], rtol=1e-12)
    assert np.all(np.isnan(params.se_a[:10]))
    # new items land on the true scale: without anchors they would be shifted by ~0.8
    shift = np.mean(params.b[10:, 0] - bank.b[10:, 0])
    assert abs(shift) < 0.25, shift
    # the file written by calibrate is accepted back as anchors
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params2.csv",
                             "--anchors", "params.csv", "--quiet"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(read_params("params2.csv").b, params.b, rtol=1e-12)


def test_girth_engine(workdir: Path, sim: dict) -> None:
    write_wide(workdir / "responses.csv", sim["x"])
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--engine", "girth",
                             "--out", "params.csv", "--quiet"])
    assert result.exit_code == 0, result.output
    params = read_params("params.csv")
    assert list(params.model) == ["2pl"] * N_ITEMS
    assert np.corrcoef(params.b[:, 0], sim["bank"].b[:, 0])[0, 1] > 0.95
    assert np.corrcoef(params.a, sim["bank"].a)[0, 1] > 0.7


def test_girth_refuses_anchors(workdir: Path, sim: dict) -> None:
    write_wide(workdir / "responses.csv", sim["x"])
    write_params(workdir / "anchors.csv", sim["bank"].subset(ITEMS[:5]))
    result = CliRunner().invoke(calibrate, ["responses.csv", "--model", "2pl", "--engine",
                                            "girth", "--anchors", "anchors.csv", "--out", "p.csv"])
    assert result.exit_code == 2
    assert "--engine girth supports neither --anchors" in result.output
    assert not (workdir / "p.csv").exists()


def test_report_is_self_contained(workdir: Path, sim: dict) -> None:
    write_wide(workdir / "responses.csv", sim["x"][:300])
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--report", "report.html", "--lang", "en", "--quiet"])
    assert result.exit_code == 0, result.output
    html = (workdir / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    # ICCs, observed/expected, item and test information, persons, history
    assert html.count("data:image/png;base64,") >= 6
    for external in ('src="http', "src='http", 'href="http', "url(http", "<script", "<link"):
        assert external not in html
    for section in ("Item estimates", "Item fit", "Item characteristic curves",
                    "Item information curves", "Observed and expected scores by ability group",
                    "Person distribution", "Test information", "Convergence history"):
        assert section in html
    assert "Q20" in html and "SE(a)" in html
    # the default language is Chinese: same report, headings from the zh_CN catalog
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--report", "report_zh.html", "--quiet"])
    assert result.exit_code == 0, result.output
    zh = (workdir / "report_zh.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in zh
    for section in ("题目参数估计", "题目拟合", "项目特征曲线", "项目信息曲线", "被试能力分布",
                    "测验信息量", "收敛过程", "模型拟合"):
        assert f">{section}</h2>" in zh, section
    assert "Item estimates" not in zh


# ---------------------------------------------------------------------------- screening

def test_constant_item_is_listed_and_left_out(workdir: Path, sim: dict) -> None:
    """A constant item and one with too few responses are warnings, not a failed run."""
    x = sim["x"][:300].astype(float)
    x[:, 2] = 1.0                # Q3: everybody right
    x[5:, 4] = np.nan            # Q5: 5 responses, 10 needed
    write_wide(workdir / "responses.csv", x)
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--report", "report.html", "--lang", "en", "--quiet"])
    assert result.exit_code == 0, result.output
    assert ("warning: items left out of the calibration (2; 1 no response variance, "
            "1 too few responses): Q3: no response variance (all 300 responses = 1); "
            "Q5: only 5 responses (at least 10 needed)") in result.output
    params = read_params("params.csv")
    assert list(params.item_ids) == [i for i in ITEMS if i not in ("Q3", "Q5")]
    html = (workdir / "report.html").read_text(encoding="utf-8")
    assert "Items left out (2)" in html
    assert "Q3</th><td class=\"text\">no response variance (all 300 responses = 1)" in html
    # --min-responses lowers the limit: Q5 is then estimated, Q3 still cannot be
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params2.csv",
                             "--min-responses", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Q5" in read_params("params2.csv").item_ids
    assert "Q3" not in read_params("params2.csv").item_ids


def test_unanswered_anchor_is_listed_and_ignored(workdir: Path, sim: dict) -> None:
    """A bank has more calibrated items than one round of responses reaches: anchors
    without responses are reported and ignored, the others still fix the scale."""
    bank = sim["bank"]
    write_wide(workdir / "responses.csv", sim["x"][:, :15].astype(float))
    anchors = bank.subset(ITEMS[:5] + ["Q19", "Q20"])   # Q19, Q20 not in the responses
    write_params(workdir / "anchors.csv", anchors)
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--anchors", "anchors.csv",
                             "--out", "params.csv", "--report", "report.html",
                             "--lang", "en", "--quiet"])
    assert result.exit_code == 0, result.output
    assert ("warning: anchors without responses in responses.csv, ignored (2): Q19, Q20"
            in result.output)
    params = read_params("params.csv")
    assert list(params.item_ids) == ITEMS[:15]        # Q19, Q20 are not written back
    np.testing.assert_allclose(params.b[:5, 0], bank.b[:5, 0], rtol=1e-12)
    assert np.all(np.isnan(params.se_a[:5])) and np.all(np.isfinite(params.se_a[5:]))
    html = (workdir / "report.html").read_text(encoding="utf-8")
    assert '<h2 id="s-warn">Warnings</h2>' in html
    assert "anchors without responses in responses.csv, ignored (2): Q19, Q20" in html


def write_with_separating_item(path: Path, sim: dict, ranks: tuple[int, int]) -> None:
    """400 persons x Q1..Q10, plus SEP answered by two persons (these ability ranks), the
    weaker wrong, the abler right: a perfect separation, so SEP's slope runs off.  Whether
    the fit then meets a singular information matrix or stops at a huge slope depends on
    the path (both ways are checked, on these fixed data)."""
    x = sim["x"][:400, :10].astype(float)
    theta = sim["theta"][:400]
    sep = np.full(400, np.nan)
    sep[np.argsort(theta)[list(ranks)]] = [0.0, 1.0]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", *ITEMS[:10], "SEP"])
        for i, row in enumerate(np.column_stack([x, sep])):
            writer.writerow([f"p{i}"] + ["" if np.isnan(v) else int(v) for v in row])


def test_separating_item_is_kept_at_the_bound_and_named(workdir: Path, sim: dict) -> None:
    """The separating item used to be left out after a singular information matrix and
    the fit rerun (a loop that on sparse data left out nearly every item).  Now no item
    is left out: SEP stops at the slope bound, the warning on stderr names it, its
    PARAMS.csv row says so and the other items keep finite SEs."""
    write_with_separating_item(workdir / "responses.csv", sim, (0, 399))
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--min-responses", "1", "--report", "report.html",
                             "--lang", "en", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Singular matrix" not in result.output and "Traceback" not in result.output
    assert "warning: estimates stopped at a bound (0.01 <= a <= 20" in result.output
    assert "): SEP (a = 20)" in result.output
    params = read_params("params.csv")
    assert list(params.item_ids) == ITEMS[:10] + ["SEP"]
    assert np.all(np.isfinite(params.se_a[:10])) and np.isnan(params.se_a[10])
    assert params.a[10] == pytest.approx(20.0)
    rows = {row["item_id"]: row for row in read_csv(workdir / "params.csv")}
    assert rows["SEP"]["warning"].startswith("estimate at a bound")
    assert rows["Q1"]["warning"] == ""
    html = (workdir / "report.html").read_text(encoding="utf-8")
    assert "estimates stopped at a bound" in html and "Items left out" not in html


def test_runaway_slope_is_a_warning(workdir: Path, sim: dict) -> None:
    """A separating item whose fit ends at a huge slope (not singular) is named too."""
    write_with_separating_item(workdir / "responses.csv", sim, (100, 300))
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--min-responses", "1", "--report", "report.html",
                             "--lang", "en", "--quiet"])
    assert result.exit_code == 0, result.output
    message = ("slopes beyond the plausible range, not identified by these responses "
               "(perfect separation?): SEP (a = ")
    assert f"warning: {message}" in result.output
    assert message in (workdir / "report.html").read_text(encoding="utf-8")
    assert "Q1 (a =" not in result.output


# ---------------------------------------------------------------------------- bad input

GOOD = "person_id,Q1,Q2,Q3\np1,1,0,1\np2,0,1,1\np3,1,1,0\np4,0,0,0\n"


@pytest.mark.parametrize(("responses", "extra", "expected"), [
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,0,x,1\np3,1,1,0\n", [],
     "responses.csv, row 3, column Q2: score 'x' is not an integer 0..1"),
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,0,-1,1\n", [],
     "responses.csv, row 3, column Q2: score '-1' is not an integer"),
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,0,2,1\n", [],
     "responses.csv, row 3, column Q2: score '2' is above the highest category 1"),
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,0,1\n", [],
     "responses.csv, row 3: has 3 cells but the header has 4"),
    # every item constant: nothing is left to calibrate (one constant item is a warning,
    # see test_constant_item_is_listed_and_left_out)
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,1,0,1\np3,1,0,1\n", ["--min-responses", "1"],
     "responses.csv: no item can be calibrated: all 3 items are left out "
     "(3 no response variance)"),
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,1,1,0\np3,1,0,0\n", [],
     "responses.csv: no item can be calibrated: all 3 items are left out "
     "(3 too few responses)"),
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,0,1,1\np1,1,1,0\n", [],
     "responses.csv, row 4, column person_id: duplicate person id 'p1' (first on row 2)"),
    ("person_id,Q1,Q2,Q1\np1,1,0,1\n", [],
     "responses.csv, row 1, column Q1: duplicate column"),
    ("", [], "responses.csv: file is empty"),
    (b"person_id,Q1\np1,1\n\xff,0\n", [], "responses.csv, row 3: not valid UTF-8"),
    # an anchor without responses is ignored (test_unanswered_anchor_is_listed_and_ignored);
    # no answered anchor at all cannot keep the scale
    (GOOD, ["--anchors", "anchors_absent.csv"],
     "anchors_absent.csv, column item_id: none of the 2 anchor items has a response in "
     "responses.csv"),
    (GOOD, ["--anchors", "anchors_no_b.csv"],
     "anchors_no_b.csv, row 1, column b: required column is missing"),
    (GOOD, ["--id-col", "pid"], "responses.csv, row 1, column pid: no such column"),
])
def test_calibrate_bad_input_writes_nothing(workdir: Path, responses: str | bytes,
                                            extra: list[str], expected: str) -> None:
    raw = responses if isinstance(responses, bytes) else responses.encode("utf-8")
    (workdir / "responses.csv").write_bytes(raw)
    (workdir / "anchors_absent.csv").write_text("item_id,model,a,b\nQ8,2pl,1,0\nQ9,2pl,1,0\n")
    (workdir / "anchors_no_b.csv").write_text("item_id,model,a\nQ1,2pl,1\n")
    result = CliRunner().invoke(calibrate, ["responses.csv", "--model", "2pl", "--out",
                                            "params.csv", "--report", "report.html", *extra])
    assert result.exit_code == 1, result.output
    assert f"Error: {expected}" in result.output
    assert not (workdir / "params.csv").exists()
    assert not (workdir / "report.html").exists()
    assert not [p for p in workdir.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_output_is_refused_before_work(workdir: Path) -> None:
    (workdir / "responses.csv").write_text(GOOD)
    result = CliRunner().invoke(calibrate, ["responses.csv", "--model", "2pl", "--out",
                                            "params.csv", "--report", "nodir/report.html"])
    assert result.exit_code == 1
    assert "Error: cannot write nodir/report.html: directory" in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["responses.csv"]


def test_calibration_failure_is_a_message(workdir: Path) -> None:
    """When no item can be estimated (here: 4 responses each, 10 needed) the run stops
    cleanly, naming the file and why, and writes nothing."""
    (workdir / "responses.csv").write_text(GOOD)
    result = CliRunner().invoke(calibrate, ["responses.csv", "--model", "2pl", "--out", "p.csv"])
    assert result.exit_code == 1
    assert ("Error: responses.csv: no item can be calibrated: all 3 items are left out "
            "(3 too few responses)") in result.output
    assert "Traceback" not in result.output
    assert not (workdir / "p.csv").exists()
    # a score the model cannot take is a message as well
    (workdir / "poly.csv").write_text("person_id,Q1\n" + "".join(
        f"p{i},{i % 3}\n" for i in range(12)))
    result = CliRunner().invoke(calibrate, ["poly.csv", "--model", "2pl", "--out", "p.csv"])
    assert result.exit_code == 1 and result.output.startswith("Error: poly.csv")
    assert not (workdir / "p.csv").exists()


@pytest.mark.parametrize(("params", "expected"), [
    ("item_id,model,a,b\nQ1,2pl,1,0\nQ2,2pl,1,0\nQ3,2pl,1,0\nQ4,2pl,1,0\n",
     "params.csv, column item_id: item 'Q4' not in responses.csv"),
    ("item_id,model,a,b\nQ1,2pl,1,0\nQ2,2pl,1,0\n",
     "responses.csv, column Q3: item has no parameters in params.csv"),
    ("item_id,model,b\nQ1,2pl,0\n", "params.csv, row 1, column a: required column is missing"),
    ("item_id,model,a,b\nQ1,2pl,1,0\nQ2,2pl,1,0\nQ3,2pl,1,zero\n",
     "params.csv, row 4, column b: 'zero' is not a number"),
])
def test_score_bad_params_writes_nothing(workdir: Path, params: str, expected: str) -> None:
    (workdir / "responses.csv").write_text(GOOD)
    (workdir / "params.csv").write_text(params)
    result = CliRunner().invoke(score, ["responses.csv", "--params", "params.csv",
                                        "--out", "scores.csv"])
    assert result.exit_code == 1, result.output
    assert f"Error: {expected}" in result.output
    assert not (workdir / "scores.csv").exists()


def test_score_checks_categories_against_params(workdir: Path) -> None:
    (workdir / "responses.csv").write_text("person_id,Q1,Q2\np1,1,3\n")
    (workdir / "params.csv").write_text("item_id,model,a,b,c,b1,b2\n"
                                        "Q1,2pl,1,0,0,,\nQ2,grm,1,,,-1,1\n")
    result = CliRunner().invoke(score, ["responses.csv", "--params", "params.csv",
                                        "--out", "scores.csv"])
    assert result.exit_code == 1
    assert "responses.csv, row 2, column Q2: score '3' is above the highest category 2" \
        in result.output
    assert not (workdir / "scores.csv").exists()


# ---------------------------------------------------------------------------- dif

def test_dif_detects_planted_item(workdir: Path, sim: dict) -> None:
    bank = sim["bank"]
    theta = np.random.default_rng(31).normal(size=1000)
    groups = ["R"] * 500 + ["F"] * 500
    x_ref = simulate(bank, theta[:500], seed=32)
    x_foc = simulate(bank, theta[500:], seed=33, shift={4: 1.0})  # Q5 harder for F
    write_wide(workdir / "responses.csv", np.vstack([x_ref, x_foc]).astype(float), groups)
    write_params(workdir / "params.csv", bank)
    result = run(dif, ["responses.csv", "--params", "params.csv", "--group-col", "grp",
                       "--focal", "F", "--method", "both", "--out", "dif.csv"])
    assert result.exit_code == 0, result.output
    rows = read_csv(workdir / "dif.csv")
    assert [r["item_id"] for r in rows] == ITEMS
    assert {"ets_class", "mh_d_dif"} <= set(rows[0])
    by_item = {r["item_id"]: r for r in rows}
    assert by_item["Q5"]["ets_class"] == "C"
    assert float(by_item["Q5"]["mh_d_dif"]) < -1.5  # harder for the focal group
    assert sum(r["ets_class"] == "C" for r in rows) <= 2  # few false alarms at n = 500
    assert "ETS class C (large DIF): Q5" in result.output
    # without --out the table is printed
    printed = run(dif, ["responses.csv", "--params", "params.csv", "--group-col", "grp",
                        "--focal", "F"])
    assert printed.exit_code == 0
    lines = printed.stdout.splitlines()
    assert lines[0].split()[:2] == ["item_id", "n_ref"]
    assert lines[5].split()[0] == "Q5" and "C" in lines[5].split()


def test_dif_unknown_focal_group(workdir: Path) -> None:
    (workdir / "responses.csv").write_text("person_id,grp,Q1\np1,A,1\np2,B,0\n")
    (workdir / "params.csv").write_text("item_id,model,a,b\nQ1,2pl,1,0\n")
    result = CliRunner().invoke(dif, ["responses.csv", "--params", "params.csv", "--group-col",
                                      "grp", "--focal", "C", "--out", "dif.csv"])
    assert result.exit_code == 1
    assert "responses.csv, column grp: no person in focal group 'C' (values: A, B)" \
        in result.output
    assert not (workdir / "dif.csv").exists()


# ---------------------------------------------------------------------------- latent prior

RASCH_ITEMS = 10
RASCH_B = np.linspace(-1.5, 1.5, RASCH_ITEMS)


def rasch_posterior_moments(sum_score: int, b: np.ndarray, mean: float, sd: float
                            ) -> tuple[float, float]:
    """EAP and posterior SD of a Rasch sum score by adaptive quadrature (scipy quad) of
    the likelihood times the N(mean, sd^2) density: own formula, not scoring.models."""
    from scipy import integrate, stats

    def density(t: float) -> float:
        # the likelihood of every pattern with this sum score is proportional to this
        return float(np.exp(sum_score * t - np.sum(np.log1p(np.exp(t - b))))
                     * stats.norm.pdf(t, mean, sd))

    lo, hi = mean - 12 * sd, mean + 12 * sd
    opts = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}
    z = integrate.quad(density, lo, hi, **opts)[0]
    m = integrate.quad(lambda t: t * density(t), lo, hi, **opts)[0] / z
    v = integrate.quad(lambda t: (t - m) ** 2 * density(t), lo, hi, **opts)[0] / z
    return m, float(np.sqrt(v))


@pytest.fixture(scope="module")
def rasch_sd075() -> np.ndarray:
    """2,000 persons with theta ~ N(0, 0.75^2) answering 10 Rasch items (own simulation)."""
    theta = np.random.default_rng(2026).normal(0.0, 0.75, 2000)
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - RASCH_B[None, :])))
    return (np.random.default_rng(2027).random(p.shape) < p).astype(int)


def test_rasch_latent_sd_travels_from_calibrate_to_score(workdir: Path,
                                                         rasch_sd075: np.ndarray) -> None:
    """Issue 18: a Rasch calibration estimates the latent SD (true 0.75) and writes it to
    PARAMS.csv; `score` then gives EAPs (and posterior SDs) equal to exact integration
    under N(latent_mean, latent_sd^2) to 1e-6, where the old N(0, 1) prior was off by
    more than 0.05; MAP equals the brute-force posterior mode to 1e-6."""
    from scipy import optimize, stats

    write_wide(workdir / "responses.csv", rasch_sd075)
    result = run(calibrate, ["responses.csv", "--model", "rasch", "--out", "params.csv",
                             "--quiet"])
    assert result.exit_code == 0, result.output
    params = read_params("params.csv")
    rows = read_csv(workdir / "params.csv")
    assert {(r["latent_mean"], r["latent_sd"]) for r in rows} == {
        (repr(params.latent_mean), repr(params.latent_sd))}
    # 2,000 persons, 10 items: the SD's SE is about 0.02 (seeded; 0.75 +- 0.06)
    assert params.latent_mean == 0.0 and abs(params.latent_sd - 0.75) < 0.06
    mean, sd = params.latent_mean, params.latent_sd
    b = params.b[:, 0]

    result = run(score, ["responses.csv", "--params", "params.csv", "--out", "eap.csv",
                         "--quiet"])
    assert result.exit_code == 0, result.output
    scores = read_csv(workdir / "eap.csv")
    theta = np.array([float(s["theta"]) for s in scores])
    se = np.array([float(s["se"]) for s in scores])
    sums = rasch_sd075.sum(axis=1)
    exact = {k: rasch_posterior_moments(k, b, mean, sd) for k in np.unique(sums).tolist()}
    want_theta = np.array([exact[k][0] for k in sums.tolist()])
    want_se = np.array([exact[k][1] for k in sums.tolist()])
    np.testing.assert_allclose(theta, want_theta, atol=1e-6, rtol=0)
    np.testing.assert_allclose(se, want_se, atol=1e-6, rtol=0)
    standard = {k: rasch_posterior_moments(k, b, 0.0, 1.0)[0] for k in exact}
    assert max(abs(standard[k] - exact[k][0]) for k in exact) > 0.05  # the old error

    run(score, ["responses.csv", "--params", "params.csv", "--method", "map",
                "--out", "map.csv", "--quiet"])
    got = np.array([float(s["theta"]) for s in read_csv(workdir / "map.csv")])
    for k in exact:
        mode = optimize.minimize_scalar(
            lambda t, k=k: -(k * t - np.sum(np.log1p(np.exp(t - b)))
                             + stats.norm.logpdf(t, mean, sd)),
            bounds=(-6, 6), method="bounded", options={"xatol": 1e-10}).x
        assert np.allclose(got[sums == k], mode, atol=1e-6)


def test_score_plausible_values_and_dif_use_the_latent_distribution(
        workdir: Path, rasch_sd075: np.ndarray) -> None:
    """`score --pv` draws from the posterior under PARAMS' latent distribution: the same
    draws as plausible_values with that prior given explicitly, not those under N(0, 1)."""
    from scoring.plausible import plausible_values

    x = rasch_sd075[:300]
    write_wide(workdir / "responses.csv", x)
    bank = ItemParams.from_arrays([f"Q{j + 1}" for j in range(RASCH_ITEMS)], "rasch", 1.0,
                                  RASCH_B, latent_mean=0.1, latent_sd=0.75)
    write_params(workdir / "params.csv", bank)
    result = run(score, ["responses.csv", "--params", "params.csv", "--out", "s.csv",
                         "--pv", "4", "--seed", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    pvs = np.array([[float(r[f"pv{k}"]) for k in range(1, 5)]
                    for r in read_csv(workdir / "s.csv")])
    want = plausible_values(bank, x.astype(float), n_draws=4, rng=3, prior_mean=0.1,
                            prior_sd=0.75)
    np.testing.assert_allclose(pvs, want, rtol=0, atol=1e-12)
    old = plausible_values(bank, x.astype(float), n_draws=4, rng=3, prior_mean=0.0,
                           prior_sd=1.0)
    assert np.max(np.abs(old - want)) > 0.05


def test_link_writes_the_transformed_latent_distribution(workdir: Path, sim: dict) -> None:
    """LINKED.csv carries NEW's latent distribution on REF's scale: N(A m + B, (A s)^2)."""
    ref = sim["bank"]
    A, B = 1.2, -0.5
    new = ItemParams.from_arrays(item_ids=ref.item_ids, model="2pl", a=ref.a * A,
                                 b=(ref.b[:, 0] - B) / A, latent_mean=0.3, latent_sd=0.8)
    write_params(workdir / "ref.csv", ref)
    write_params(workdir / "new.csv", new)
    result = run(link, ["new.csv", "ref.csv", "--method", "mean-sigma", "--out", "l.csv"])
    assert result.exit_code == 0, result.output
    linked = read_params("l.csv")
    assert linked.latent_mean == pytest.approx(A * 0.3 + B, abs=1e-9)
    assert linked.latent_sd == pytest.approx(A * 0.8, abs=1e-9)


def test_multigroup_calibration_writes_the_pooled_distribution(workdir: Path) -> None:
    """Two groups N(-0.5, 0.7^2) and N(0.5, 0.7^2) of 1,000 each (Rasch): PARAMS.csv holds
    the pooled mixture of the calibrated groups (mean of the means, SD^2 = mean of
    SD^2 + spread of the means), about N(0, 0.86^2) when the reference group is first."""
    rng = np.random.default_rng(99)
    theta = np.concatenate([rng.normal(-0.5, 0.7, 1000), rng.normal(0.5, 0.7, 1000)])
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - RASCH_B[None, :])))
    x = (rng.random(p.shape) < p).astype(int)
    write_wide(workdir / "responses.csv", x, groups=["a"] * 1000 + ["b"] * 1000)
    result = run(calibrate, ["responses.csv", "--model", "rasch", "--group-col", "grp",
                             "--out", "params.csv", "--quiet"])
    assert result.exit_code == 0, result.output
    params = read_params("params.csv")
    # the reference group "a" has mean 0: group b sits about 1 higher, the pool at ~0.5
    assert params.latent_mean == pytest.approx(0.5, abs=0.1)
    assert params.latent_sd == pytest.approx(np.sqrt(0.7**2 + 0.5**2), abs=0.08)


# ---------------------------------------------------------------------------- link

@pytest.mark.parametrize("method", ["mean-mean", "mean-sigma", "stocking-lord", "haebara"])
def test_link_recovers_known_transform(workdir: Path, sim: dict, method: str) -> None:
    """NEW is REF expressed on a scale theta_new = (theta_ref - B) / A with A=1.2, B=-0.5:
    every method recovers A and B exactly from error-free parameters."""
    ref = sim["bank"]
    A, B = 1.2, -0.5
    new = ItemParams.from_arrays(item_ids=ref.item_ids, model="2pl", a=ref.a * A,
                                 b=(ref.b[:, 0] - B) / A)
    write_params(workdir / "ref.csv", ref)
    write_params(workdir / "new.csv", new)
    result = run(link, ["new.csv", "ref.csv", "--method", method, "--out", "linked.csv"])
    assert result.exit_code == 0, result.output
    values = dict(line.split(" = ") for line in result.stdout.splitlines())
    assert float(values["A"]) == pytest.approx(A, abs=1e-3)
    assert float(values["B"]) == pytest.approx(B, abs=1e-3)
    linked = read_params("linked.csv")
    np.testing.assert_allclose(linked.a, ref.a, atol=1e-3)
    np.testing.assert_allclose(linked.b[:, 0], ref.b[:, 0], atol=1e-3)


def test_link_needs_common_items(workdir: Path) -> None:
    (workdir / "new.csv").write_text("item_id,model,a,b\nN1,2pl,1,0\n")
    (workdir / "ref.csv").write_text("item_id,model,a,b\nR1,2pl,1,0\n")
    result = CliRunner().invoke(link, ["new.csv", "ref.csv", "--out", "linked.csv"])
    assert result.exit_code == 1
    assert "new.csv, column item_id: no item in common with ref.csv" in result.output
    assert not (workdir / "linked.csv").exists()


# ---------------------------------------------------------------------------- hard data

@pytest.mark.filterwarnings("error")          # a leaked numpy RuntimeWarning fails
def test_tiny_file_gives_bounded_estimates_and_warnings(workdir: Path, sim: dict) -> None:
    """12 persons x 10 items: the command used to stop with "Error: FILE: Singular
    matrix" (later: left the items out).  Now exit 0, every estimable item written with a
    slope within the bound, the items at the bound named on stderr and in PARAMS.csv."""
    write_wide(workdir / "responses.csv", sim["x"][:12, :10].astype(float))
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--min-responses", "1", "--report", "report.html", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Singular" not in result.output
    assert "RuntimeWarning" not in result.output
    assert result.stdout == ""
    assert "warning: estimates stopped at a bound (0.01 <= a <= 20" in result.stderr
    params = read_params("params.csv")
    left_out = result.stderr.count(": no response variance")
    assert params.n_items == 10 - left_out
    assert np.all((params.a >= 0.01) & (params.a <= 20.0))
    at_bound = [str(i) for i, a in zip(params.item_ids, params.a, strict=True)
                if abs(a) >= 20.0 - 1e-6]
    assert at_bound
    rows = {row["item_id"]: row for row in read_csv(workdir / "params.csv")}
    for item in at_bound:
        assert f"{item} (a = " in result.stderr
        assert rows[item]["warning"].startswith("estimate at a bound")
    assert "estimates stopped at a bound" in (workdir / "report.html").read_text("utf-8")
    # a lognormal slope prior from the command line: no slope at the bound
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "prior.csv",
                             "--min-responses", "1", "--slope-prior", "0,0.5", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "estimates stopped at a bound" not in result.stderr
    assert np.all(read_params("prior.csv").a < 5.0)


def test_disconnected_design_warns_on_stderr(workdir: Path, sim: dict) -> None:
    x = sim["x"][:, :12].astype(float)
    x[:300, 6:] = np.nan
    x[300:, :6] = np.nan
    write_wide(workdir / "responses.csv", x)
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--quiet", "--no-fit"])
    assert result.exit_code == 0, result.output
    assert ("warning: disconnected design: 6 item(s) share no person with the block of "
            "item Q1 (2 blocks)") in result.stderr
    assert result.stderr.rstrip().endswith("Q7, Q8, Q9, Q10, Q11, Q12") or \
        "Q7, Q8, Q9, Q10, Q11, Q12\n" in result.stderr
    rows = read_csv(workdir / "params.csv")
    assert [r["warning"] != "" for r in rows] == [False] * 6 + [True] * 6


def write_graded(path: Path, n_persons: int = 400, seed: int = 3) -> np.ndarray:
    """Six four-category GRM items; nobody chooses category 1 of Q3."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(1.0, 2.0, 6)
    b = np.sort(rng.normal(0.0, 1.0, (6, 3)), axis=1)
    theta = rng.standard_normal(n_persons)
    star = 1 / (1 + np.exp(-a[None, :, None] * (theta[:, None, None] - b[None])))
    x = (rng.random((n_persons, 6, 1)) < star).sum(axis=2).astype(float)
    x[x[:, 2] == 1, 2] = 2.0
    write_wide(path, x)
    return x


def test_unused_category_left_out_or_collapsed(workdir: Path) -> None:
    write_graded(workdir / "responses.csv")
    result = run(calibrate, ["responses.csv", "--model", "grm", "--out", "params.csv",
                             "--quiet"])
    assert result.exit_code == 0, result.output
    assert ("Q3: no responses in category 1 of 0..3 (--collapse-unused merges it with its "
            "neighbour)") in result.stderr
    assert "Q3" not in read_params("params.csv").item_ids
    result = run(calibrate, ["responses.csv", "--model", "grm", "--out", "collapsed.csv",
                             "--collapse-unused", "--quiet"])
    assert result.exit_code == 0, result.output
    assert ("warning: item Q3: unused categories merged; original categories 0, 2, 3 are "
            "scored 0, 1, 2") in result.stderr
    params = read_params("collapsed.csv")
    assert list(params.item_ids) == ITEMS[:6]
    assert params.n_categories.tolist() == [4, 4, 3, 4, 4, 4]
    rows = {row["item_id"]: row for row in read_csv(workdir / "collapsed.csv")}
    assert rows["Q3"]["warning"] == ("unused categories merged: original categories 0 2 3 "
                                     "scored 0 1 2")
    assert rows["Q1"]["warning"] == ""


def test_calibration_options(workdir: Path, sim: dict) -> None:
    """--n-quad, --theta-range, --tol, --max-iter, --no-se, --no-fit reach the fit."""
    write_wide(workdir / "responses.csv", sim["x"][:300].astype(float))
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "params.csv",
                             "--n-quad", "61", "--theta-range", "-5,5", "--tol", "1e-3",
                             "--max-iter", "3", "--no-se", "--no-fit", "--report",
                             "report.html", "--lang", "en", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: calibration did not converge after 3 EM cycles (tol 0.001)" \
        in result.stderr
    params = read_params("params.csv")
    assert np.all(np.isnan(params.se_a))
    rows = read_csv(workdir / "params.csv")
    assert all(row["infit"] == "" and row["se_b"] == "" for row in rows)
    html = (workdir / "report.html").read_text(encoding="utf-8")
    assert "61 equally spaced quadrature points on [-5, 5]" in html
    assert "Item fit was not computed" in html
    # the defaults: automatic grid (41 points for 20 items), SEs and fit
    result = run(calibrate, ["responses.csv", "--model", "2pl", "--out", "default.csv",
                             "--report", "default.html", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "automatic choice of" in (workdir / "default.html").read_text(encoding="utf-8")
    assert np.all(np.isfinite(read_params("default.csv").se_a))


@pytest.mark.parametrize(("args", "expected"), [
    (["--slope-prior", "0"], "'0': expected meanlog,sdlog as two numbers 'x,y' or 'none'"),
    (["--slope-prior", "0,-1"], "'0,-1': meanlog,sdlog must be finite and positive"),
    (["--guess-prior", "a,b"], "expected alpha,beta as two numbers"),
    (["--n-quad", "3"], "3: at least 5 quadrature points are needed"),
    (["--n-quad", "many"], "'many': expected 'auto' or a whole number"),
    (["--theta-range", "none"], "'none': expected lo,hi as two numbers 'x,y'"),
    (["--engine", "girth", "--slope-prior", "0,0.5"],
     "--engine girth does not take --slope-prior; use --engine native"),
])
def test_calibration_option_errors(workdir: Path, sim: dict, args: list[str],
                                   expected: str) -> None:
    write_wide(workdir / "responses.csv", sim["x"][:50].astype(float))
    result = CliRunner().invoke(calibrate, ["responses.csv", "--model", "2pl", "--out",
                                            "params.csv", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output and not (workdir / "params.csv").exists()
