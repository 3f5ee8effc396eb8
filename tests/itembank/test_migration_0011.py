"""Migration 0011 gives stored calibrations the latent distribution their files meant
(N(0, 1): PARAMS.csv had no latent columns before) and the models' defaults; a newly
imported calibration keeps its own. Run on a fresh database per backend: downgrade
0011, upgrade again."""
from __future__ import annotations

import sqlalchemy as sa


def test_stored_calibrations_become_standard_normal(fresh_url: str) -> None:
    from alembic import command

    from itembank import demo_content as bank_demo
    from itembank.models import Calibration
    from learningcity import db, demo

    db.upgrade(fresh_url)
    engine = db.make_engine(fresh_url)
    session = db.session_factory(engine)()
    demo.load(session)
    bank_demo.load(session)
    session.commit()
    session.close()
    cfg = db.alembic_config("main", fresh_url)
    command.downgrade(cfg, "0011_calibration_latent-1")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("calibration")}
        assert "latent_sd" not in columns
        n_stored = conn.execute(sa.text("SELECT count(*) FROM calibration")).scalar()
    assert n_stored >= 1
    command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        values = set(conn.execute(sa.text(
            "SELECT latent_mean, latent_sd FROM calibration")).all())
    assert values == {(0.0, 1.0)}
    session = db.session_factory(engine)()
    calibration = session.scalar(sa.select(Calibration).limit(1))
    calibration.latent_sd = 0.75
    session.commit()
    assert session.scalar(sa.select(Calibration.latent_sd).where(
        Calibration.id == calibration.id)) == 0.75
    session.close()
    engine.dispose()
