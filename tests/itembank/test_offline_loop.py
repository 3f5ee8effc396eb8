"""The researchers' offline loop, end to end on each database backend:

export responses -> ``learningcity calibrate`` -> ``import-calibration`` -> publish,
then pilot items calibrated onto the published scale with ``--anchors`` and published.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import sqlalchemy as sa
from click.testing import CliRunner

from itembank.demo_content import DOMAINS
from itembank.importing import read_item_file
from itembank.models import (
    Calibration,
    CalibrationItem,
    Instrument,
    Item,
    ItemResponse,
    ItemVersion,
)
from itembank.services import ensure_domains, import_items
from learningcity.cli import main
from tests.conftest import write_ini

from .conftest import make_items

N_PERSONS = 1500
SEED = 7


def simulate_bank(dbsession, tmp_path):
    """24 operational + 4 pilot items; every simulee answers 12 operational + 2 pilot items."""
    ensure_domains(dbsession, DOMAINS)
    dbsession.add(Instrument(code="LLA", name_zh="测评", name_en="Test"))
    items = make_items(n_per_domain=14, pilot=2)
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    import_items(dbsession, read_item_file(path), "tests")
    dbsession.flush()
    instrument = dbsession.scalar(sa.select(Instrument))
    versions = dbsession.execute(sa.select(Item.code, Item.status, ItemVersion.id, Item.id)
                                 .join(ItemVersion).order_by(Item.code)).all()
    rng = np.random.default_rng(SEED)
    n = len(versions)
    a_true = rng.uniform(0.8, 2.0, n)
    b_true = rng.uniform(-1.8, 1.8, n)
    theta = rng.normal(0, 1, N_PERSONS)
    operational = [j for j, v in enumerate(versions) if v.status == "operational"]
    pilot = [j for j, v in enumerate(versions) if v.status == "pilot"]
    rows = []
    for p in range(N_PERSONS):
        chosen = list(rng.choice(operational, 12, replace=False)) + \
            list(rng.choice(pilot, 2, replace=False))
        for j in chosen:
            prob = 1 / (1 + np.exp(-a_true[j] * (theta[p] - b_true[j])))
            score = int(rng.random() < prob)
            rows.append({"instrument_id": instrument.id, "item_version_id": versions[j][2],
                         "item_id": versions[j][3], "respondent": f"s{p:05d}",
                         "groups": {"age_band": "60+" if p % 3 == 0 else "18-59"},
                         "choice": None, "score": score, "scored": j in operational})
    dbsession.execute(sa.insert(ItemResponse), rows)
    dbsession.commit()
    codes = [v.code for v in versions]
    return codes, a_true, b_true, operational, pilot


def read_params(path):
    with open(path, encoding="utf-8-sig") as fh:
        return {row["item_id"]: row for row in csv.DictReader(fh)}


def run(runner, *args):
    result = runner.invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_offline_loop_with_pilot_items_on_the_published_scale(dbsession, tmp_path, db_url):
    codes, _a_true, b_true, operational, pilot = simulate_bank(dbsession, tmp_path)
    ini = write_ini(tmp_path, db_url)
    runner = CliRunner()

    # 1. export operational responses and calibrate them
    responses = tmp_path / "responses.csv"
    out = run(runner, "itembank", "export-responses", "--instrument", "LLA", "--out",
              responses, "--group", "age_band", "--scored-only", "--ini", ini)
    assert f"{N_PERSONS} respondent(s) x {len(operational)} item(s)" in out
    header = responses.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:2] == ["person_id", "age_band"]
    params = tmp_path / "params.csv"
    run(runner, "calibrate", responses, "--model", "2pl", "--out", params, "--id-col",
        "person_id", "--group-col", "age_band", "--quiet")

    # 2. import, publish
    dif = tmp_path / "dif.csv"
    run(runner, "dif", responses, "--params", params, "--group-col", "age_band", "--focal",
        "60+", "--method", "mh", "--out", dif, "--id-col", "person_id")
    run(runner, "itembank", "import-calibration", params, "--name", "base", "--instrument",
        "LLA", "--source", "test simulation", "--dif", dif, "--ini", ini)
    # no DIF was simulated: at most the odd chance flag, and the classes are stored
    dbsession.expire_all()
    flags = dbsession.scalars(sa.select(CalibrationItem.dif_flag)).all()
    assert len(flags) == len(operational) and sum(f == "C" for f in flags) <= 1
    run(runner, "itembank", "publish", "--instrument", "LLA", "--name", "base", "--ini", ini)
    estimated = read_params(params)
    b_hat = np.array([float(estimated[codes[j]]["b"]) for j in operational])
    # 1,500 persons x 12 of 24 items: b recovers within RMSE 0.25 on the N(0,1) scale
    assert np.sqrt(np.mean((b_hat - b_true[operational]) ** 2)) < 0.25

    # 3. pilot items onto the published scale: anchors = the published calibration
    anchors = tmp_path / "anchors.csv"
    run(runner, "itembank", "export-calibration", "--instrument", "LLA", "--out", anchors,
        "--ini", ini)
    all_responses = tmp_path / "all.csv"
    run(runner, "itembank", "export-responses", "--instrument", "LLA", "--out", all_responses,
        "--ini", ini)
    pilot_params = tmp_path / "with_pilot.csv"
    run(runner, "calibrate", all_responses, "--model", "2pl", "--anchors", anchors, "--out",
        pilot_params, "--id-col", "person_id", "--quiet")
    new = read_params(pilot_params)
    old = read_params(anchors)
    for j in operational:  # anchors stay exactly where they were
        assert abs(float(new[codes[j]]["b"]) - float(old[codes[j]]["b"])) < 1e-6
    b_pilot = np.array([float(new[codes[j]]["b"]) for j in pilot])
    # each pilot item has ~750 answers: b within 0.35 of the generating value
    assert np.max(np.abs(b_pilot - b_true[pilot])) < 0.35, (b_pilot, b_true[pilot])

    run(runner, "itembank", "import-calibration", pilot_params, "--name", "base",
        "--instrument", "LLA", "--publish", "--ini", ini)
    dbsession.expire_all()
    instrument = dbsession.scalar(sa.select(Instrument))
    live = dbsession.get(Calibration, instrument.published_calibration_id)
    assert live.label == "base v2" and len(live.items) == len(codes)
    out = run(runner, "itembank", "calibrations", "--instrument", "LLA", "--ini", ini)
    assert "* base v2" in out
    run(runner, "itembank", "rollback", "--instrument", "LLA", "--ini", ini)
    dbsession.expire_all()
    assert dbsession.get(Instrument, instrument.id).published_calibration_id != live.id


def test_dif_classes_are_stored_with_the_calibration(dbsession, bank, tmp_path, db_url):
    from scoring.io import write_params
    from scoring.params import ItemParams

    codes = dbsession.scalars(sa.select(Item.code).order_by(Item.code)).all()
    params_path = tmp_path / "p.csv"
    write_params(params_path, ItemParams.from_arrays(item_ids=codes, model="2pl",
                                                     a=np.ones(len(codes)),
                                                     b=np.linspace(-1, 1, len(codes))))
    dif_path = tmp_path / "dif.csv"
    dif_path.write_text("item_id,ets_class\n" + "\n".join(
        f"{c},{'C' if c == codes[0] else 'A'}" for c in codes) + "\n", encoding="utf-8")
    run(CliRunner(), "itembank", "import-calibration", params_path, "--name", "d",
        "--dif", dif_path, "--ini", write_ini(tmp_path, db_url))
    flags = dict(dbsession.execute(sa.select(Item.code, CalibrationItem.dif_flag)
                                   .join(CalibrationItem)).all())
    assert flags[codes[0]] == "C" and all(flags[c] is None for c in codes[1:])
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,ets_class\nNOPE-1,C\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["itembank", "import-calibration", str(params_path),
                                       "--name", "d", "--dif", str(bad), "--ini",
                                       write_ini(tmp_path, db_url)])
    assert result.exit_code == 1 and "NOPE-1" in result.output


def test_calibration_keeps_its_latent_distribution(dbsession, bank, tmp_path, db_url):
    """PARAMS.csv's latent_mean/latent_sd (a Rasch calibration's N(0.1, 0.756^2)) are stored
    with the calibration, come back in calibration_params and calibration_info, and are
    written again by export-calibration; a file without the columns is stored as N(0, 1)."""
    from itembank.services import calibration_info, calibration_params
    from scoring.io import read_params as read_params_file
    from scoring.io import write_params
    from scoring.params import ItemParams

    codes = dbsession.scalars(sa.select(Item.code).order_by(Item.code)).all()
    params_path = tmp_path / "p.csv"
    write_params(params_path, ItemParams.from_arrays(
        item_ids=codes, model="rasch", a=1.0, b=np.linspace(-1, 1, len(codes)),
        latent_mean=0.1, latent_sd=0.7561234567891))
    ini = write_ini(tmp_path, db_url)
    out = run(CliRunner(), "itembank", "import-calibration", params_path, "--name", "r",
              "--ini", ini)
    assert "latent N(0.100, 0.756^2)" in out
    dbsession.expire_all()
    stored = dbsession.scalar(sa.select(Calibration).where(Calibration.name == "r"))
    assert (stored.latent_mean, stored.latent_sd) == (0.1, 0.7561234567891)
    params = calibration_params(stored)
    assert (params.latent_mean, params.latent_sd) == (0.1, 0.7561234567891)
    assert calibration_info(dbsession, stored.id).params.latent_sd == 0.7561234567891
    run(CliRunner(), "itembank", "export-calibration", "--name", "r", "--out",
        tmp_path / "back.csv", "--ini", ini)
    back = read_params_file(tmp_path / "back.csv")
    assert (back.latent_mean, back.latent_sd) == (0.1, 0.7561234567891)

    old = tmp_path / "old.csv"
    old.write_text("item_id,model,a,b\n" + "".join(f"{c},rasch,1,0\n" for c in codes),
                   encoding="utf-8")
    run(CliRunner(), "itembank", "import-calibration", old, "--name", "old", "--ini", ini)
    dbsession.expire_all()
    stored = dbsession.scalar(sa.select(Calibration).where(Calibration.name == "old"))
    assert (stored.latent_mean, stored.latent_sd) == (0.0, 1.0)
