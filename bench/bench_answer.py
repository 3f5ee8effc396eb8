"""Requests per second and latency of the answer endpoint: gunicorn, 2 workers, PostgreSQL.

    python bench/bench_answer.py [--residents 40] [--concurrency 20] [--port 6590]

Creates a fresh PostgreSQL database (``LEARNINGCITY_TEST_PG``, default the local
server), migrates it and loads the demo bank, serves the app with gunicorn (2
workers, 4 threads each) on loopback, then runs simulated residents in threads:
each starts a session through the JSON API and answers until the test stops.
Prints answers/s and p50/p95/p99 latency of ``POST /api/v1/sessions/{token}/answers``.
Bounded: at most ``--residents`` sessions, loopback only, stops by itself.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("LEARNINGCITY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_database() -> tuple[str, str]:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    name = f"lc_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(PG).set(database=name).render_as_string(False), name


def drop_database(name: str) -> None:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def prepare(url: str) -> None:
    import transaction

    from itembank import demo_content
    from learningcity import db, demo

    db.upgrade(url)
    engine = db.make_engine(url)
    manager = transaction.TransactionManager(explicit=True)
    with manager:
        session = db.tm_session(db.session_factory(engine), manager)
        demo.load(session)
        demo_content.load(session)
    engine.dispose()


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None
            ) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    return res.status, json.loads(res.read() or b"{}")


def resident(port: int, latencies: list[float], errors: list[str], lock: threading.Lock,
             choices: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    status, step = request(conn, "POST", "/api/v1/sessions",
                           {"consent": True, "background": {"age_band": "60-69"}})
    if status != 201:
        with lock:
            errors.append(f"start {status}")
        return
    token = step["token"]
    n = 0
    while step.get("status") == "testing" and n < 60:
        item = step["item"]
        body = {"position": item["position"], "version": item["version"],
                "choice": 1 + n % choices}
        t0 = time.perf_counter()
        status, step = request(conn, "POST", f"/api/v1/sessions/{token}/answers", body)
        elapsed = time.perf_counter() - t0
        with lock:
            if status == 200:
                latencies.append(elapsed)
            else:
                errors.append(f"answer {status}")
        if status != 200:
            return
        n += 1
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--port", type=int, default=6590)
    args = parser.parse_args()
    url, name = make_database()
    server = None
    try:
        prepare(url)
        with tempfile.TemporaryDirectory() as tmp:
            ini = Path(tmp) / "bench.ini"
            ini.write_text(
                "[app:main]\nuse = egg:learningcity\n"
                f"sqlalchemy.url = {url}\nlearningcity.require_secret = false\n"
                "learningcity.secret = bench-secret-bench-secret-bench-secret\n"
                "sqlalchemy.pool_size = 5\n")
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--paste", str(ini), "--workers", "2",
                 "--threads", "4", "--bind", f"127.0.0.1:{args.port}", "--log-level",
                 "warning"], cwd=ROOT)
            for _ in range(100):
                try:
                    http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request(
                        "GET", "/healthz")
                    break
                except OSError:
                    time.sleep(0.2)
            time.sleep(1.0)
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            started = time.perf_counter()
            pending = list(range(args.residents))
            threads: list[threading.Thread] = []
            while pending or threads:
                threads = [t for t in threads if t.is_alive()]
                while pending and len(threads) < args.concurrency:
                    pending.pop()
                    t = threading.Thread(target=resident,
                                         args=(args.port, latencies, errors, lock, 4))
                    t.start()
                    threads.append(t)
                time.sleep(0.01)
            wall = time.perf_counter() - started
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        drop_database(name)
    q = statistics.quantiles(latencies, n=100)
    print(f"residents {args.residents}, concurrency {args.concurrency}, gunicorn 2 workers x 4 "
          f"threads, PostgreSQL")
    print(f"answers {len(latencies)} in {wall:.1f} s = {len(latencies) / wall:.0f} answers/s "
          f"(closed loop, no think time)")
    print(f"answer latency p50 {1000 * q[49]:.1f} ms, p95 {1000 * q[94]:.1f} ms, "
          f"p99 {1000 * q[98]:.1f} ms; errors {len(errors)} {sorted(set(errors))[:5]}")


if __name__ == "__main__":
    main()
