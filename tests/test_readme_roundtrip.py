"""The researchers' loop exactly as README.md ("Item bank workflow") shows it, on the demo
item bank (issue 15 item 10).

The demo bank is loaded as on a first start (items, published demonstration calibration of
194 LLA items); residents then answer it the way an adaptive test does: each a few items
near their ability, so one round of responses reaches only part of the bank, some items
are answered by few, one (planted) by a handful of able residents who all get it right.
That is what used to stop the loop: anchors without responses ("anchor item 'DIG-004' is
not in RESPONSES.csv"), constant items ("item has no variance") and, after filtering by
hand, numpy's bare "Singular matrix".  Every command is the README's line, run through the
``learningcity`` root command (with ``--ini`` for the database ones, and without the
optional ``[...]`` parts).
"""
from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import main
from tests.conftest import write_ini

README = Path(__file__).resolve().parents[1] / "README.md"
N_PERSONS = 240
PER_PERSON = 20
SEED = 15


def readme_commands() -> list[list[str]]:
    """The command lines of the README's item bank workflow block, as argument lists."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Item bank workflow", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        if not line.startswith("    learningcity "):
            continue
        line = line.split("#", 1)[0]
        line = re.sub(r"\[[^\]]*\]", "", line)  # optional parts
        commands.append(shlex.split(line)[1:])
    return commands


def simulate_round(db) -> tuple[list[str], str]:
    """Adaptive-looking responses to the published demo calibration of LLA; returns the
    calibrated item codes and the code of the planted constant item."""
    from itembank.models import Instrument, Item, ItemResponse
    from itembank.services import calibration_params, published_calibration

    instrument = db.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    params = calibration_params(published_calibration(db, instrument))
    codes = [str(c) for c in params.item_ids]
    items = {i.code: i for i in db.scalars(sa.select(Item).where(Item.code.in_(codes)))}
    rng = np.random.default_rng(SEED)
    theta = rng.normal(0.0, 1.0, N_PERSONS)
    a, b = params.a, params.b[:, 0]
    order = np.argsort(b)
    constant = codes[order[len(codes) // 2]]  # a middle item, planted below
    rows = []

    def answer(p: int, j: int, score: int) -> None:
        item = items[codes[j]]
        rows.append({"instrument_id": instrument.id, "item_version_id": item.versions[-1].id,
                     "item_id": item.id, "respondent": f"r{p:04d}", "groups": {},
                     "choice": None, "score": score, "scored": True})

    for p in range(N_PERSONS):
        # the most informative items at the resident's ability, with some randomness
        # (exposure control): weakly discriminating items are seldom or never given
        prob = 1.0 / (1.0 + np.exp(-a * (theta[p] - b)))
        near = np.argsort(-(a * a * prob * (1.0 - prob)))
        near = near[near != codes.index(constant)][:3 * PER_PERSON // 2]
        for j in rng.choice(near, PER_PERSON, replace=False):
            prob = 1.0 / (1.0 + np.exp(-a[j] * (theta[p] - b[j])))
            answer(p, int(j), int(rng.random() < prob))
    for p in np.argsort(theta)[-12:]:  # the 12 ablest all right: no variance
        answer(int(p), codes.index(constant), 1)
    db.execute(sa.insert(ItemResponse), rows)
    db.commit()
    return codes, constant


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return {row["item_id"]: row for row in csv.DictReader(handle)}


def test_readme_recalibration_round_trip_on_the_demo_bank(dbsession, tmp_path, db_url,
                                                         monkeypatch):
    from itembank import demo_content
    from itembank.models import Calibration, Instrument

    demo_content.load(dbsession)
    dbsession.commit()
    codes, constant = simulate_round(dbsession)
    ini = write_ini(tmp_path, db_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs = {}
    commands = readme_commands()
    assert [c[:2] for c in commands] == [
        ["itembank", "import"], ["itembank", "export"], ["itembank", "export-responses"],
        ["calibrate", "RESPONSES.csv"], ["itembank", "export-calibration"],
        ["calibrate", "RESPONSES.csv"], ["itembank", "import-calibration"],
        ["itembank", "publish"]]
    for args in commands:
        if args[:2] == ["itembank", "import"]:
            continue  # needs an item file of one's own; the loop does not depend on it
        if args[0] == "itembank":
            args = [*args, "--ini", ini]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output and "Singular matrix" not in result.output
        outputs[" ".join(args[:2]) + (" --anchors" if "--anchors" in args else "")] = \
            result.output

    counts = answer_counts(tmp_path / "RESPONSES.csv")
    answered = [c for c in codes if counts.get(c)]
    assert 40 < len(answered) < len(codes), len(answered)  # one round reaches part of the bank
    assert any(0 < counts[c] < 10 for c in answered)  # some too few to estimate
    anchored = outputs["calibrate RESPONSES.csv --anchors"]
    free = outputs["calibrate RESPONSES.csv"]
    absent = [c for c in codes if not counts.get(c)]
    # anchors without responses: listed (all of them) and ignored
    assert f"anchors without responses in RESPONSES.csv, ignored ({len(absent)}): " \
           + ", ".join(absent) in anchored
    new, anchors = read_csv(tmp_path / "NEW.csv"), read_csv(tmp_path / "ANCHORS.csv")
    params = read_csv(tmp_path / "PARAMS.csv")
    # the free calibration: the constant item is listed with its reason and left out;
    # every other item left out is listed too (none silently lost)
    assert f"{constant}: no response variance (all 12 responses = 1)" in free
    assert constant not in params and set(params) <= set(answered)
    warned = free.split("items left out of the calibration", 1)[1]
    for code in set(answered) - set(params):
        assert f"{code}: " in free, code
    assert "too few responses" in warned
    report = (tmp_path / "REPORT.html").read_text(encoding="utf-8")
    assert "未纳入标定的题目" in report and constant in report  # zh-CN: the default language
    # the anchored one: every answered item is an anchor, fixed (a constant anchor is
    # fine: it is not estimated) and written back unchanged; the others are not written
    assert set(new) == set(answered) and not set(absent) & set(new)
    for code, row in new.items():
        assert float(row["b"]) == float(anchors[code]["b"])

    dbsession.expire_all()
    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    live = dbsession.get(Calibration, instrument.published_calibration_id)
    assert live.name == "spring-2027" and len(live.items) == len(new)


def answer_counts(path: Path) -> dict[str, int]:
    """Responses per item column of a wide response file."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {c: sum(1 for r in rows if r[c] != "") for c in rows[0] if c != "person_id"}
