"""Campaign set-up at city scale: frame upload, draw, 2,000 invitations with their lists.

    python bench/bench_campaigns.py [--rows 200000] [--n 2000] [--backend sqlite|postgresql|both]

On a fresh migrated database per backend (SQLite file in a temporary directory;
PostgreSQL: a throw-away database on ``LEARNINGCITY_TEST_PG``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, dropped afterwards), times the
service functions the pages and the command line call, each followed by its commit:

* upload: ``frames.import_frame`` of a ``--rows`` household CSV (hh_id, district, street
  (40), age_band (4), sex): read, check every row, store units and strata;
* draw: ``draw.set_design`` (n, proportional) + ``draw.draw_sample`` (stratified SRS);
* issue: ``invitations.issue_invitations`` for the ``--n`` sampled units;
* lists: the CSV and XLSX of the same batch, and the QR codes of the printable page
  (``qr_svg_data_uri`` for every code, what the HTML list embeds).

Prints one table row per backend (seconds, wall clock).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_ADMIN_URL = os.environ.get("LEARNINGCITY_TEST_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BANDS = ("18-39", "40-59", "60-69", "70+")


def frame_csv(rows: int) -> bytes:
    """A household frame of ``rows`` rows in 160 strata (street x age band)."""
    lines = ["hh_id,district,street,age_band,sex"]
    for i in range(rows):
        lines.append(f"H{i:07d},A,S{i % 40:02d},{BANDS[(i // 40) % 4]},{'FM'[i % 2]}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def run(url: str, rows: int, n: int) -> dict[str, float]:
    from itembank import demo_content
    from learningcity import db
    from learningcity.models import District
    from monitoring.fieldwork import draw, frames, invitations
    from monitoring.fieldwork.campaigns import create_campaign
    from monitoring.fieldwork.window import local_input

    db.upgrade(url)
    engine = db.make_engine(url)
    session = db.session_factory(engine)()
    session.add(District(code="A", name_zh="甲区", name_en="District A"))
    session.flush()
    demo_content.load(session)
    now = dt.datetime.now(dt.UTC)
    campaign = create_campaign(session, district_code="A", user="bench", name="Bench",
                               test_instrument="LLA", survey_code="learning_needs",
                               mode="sample",
                               opens_at=local_input(now - dt.timedelta(days=1)),
                               closes_at=local_input(now + dt.timedelta(days=30)))
    session.commit()
    data = frame_csv(rows)
    times: dict[str, float] = {}

    t = time.perf_counter()
    spec = frames.FrameSpec("unit", "hh_id", ["street", "age_band"])
    frames.import_frame(session, campaign, "frame.csv", data, spec, "bench")
    session.commit()
    times["upload"] = time.perf_counter() - t

    t = time.perf_counter()
    draw.set_design(session, campaign, "bench", n=n)
    draw.draw_sample(session, campaign, "bench", seed=20261129)
    session.commit()
    times["draw"] = time.perf_counter() - t

    t = time.perf_counter()
    issued = invitations.issue_invitations(session, campaign, "bench",
                                           secret="bench-secret-" + "x" * 40)
    session.commit()
    times["issue"] = time.perf_counter() - t
    assert len(issued) == n, (len(issued), n)

    base = "https://learn.example.cn"
    t = time.perf_counter()
    invitations.invitations_csv(issued, base)
    invitations.invitations_xlsx(issued, base)
    times["csv+xlsx"] = time.perf_counter() - t

    t = time.perf_counter()
    size = sum(len(invitations.qr_svg_data_uri(i.link(base))) for i in issued)
    times["qr"] = time.perf_counter() - t
    times["qr_kb"] = size / 1024
    session.close()
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rows:,} frame rows, n = {args.n:,}")
    print("| backend | upload s | draw s | issue s | CSV+XLSX s | QR s | QR KB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory()
            result = run(f"sqlite:///{tmp.name}/bench.sqlite", args.rows, args.n)
            tmp.cleanup()
        else:
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            name = f"lc_bench_{uuid.uuid4().hex[:12]}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
            try:
                result = run(url.render_as_string(hide_password=False), args.rows, args.n)
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        print(f"| {backend} | {result['upload']:.2f} | {result['draw']:.2f} | "
              f"{result['issue']:.2f} | {result['csv+xlsx']:.2f} | {result['qr']:.2f} | "
              f"{result['qr_kb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
