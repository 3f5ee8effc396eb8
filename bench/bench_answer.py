"""Requests per second and latency of the answer endpoint: gunicorn, 2 workers, PostgreSQL.

    python bench/bench_answer.py [--residents 40] [--concurrency 20]

Creates a fresh PostgreSQL database (``LEARNINGCITY_TEST_PG``, default the local
server), migrates it and loads the demo bank, serves the app with gunicorn (2
workers, 4 threads each) on a free loopback port (both through
``loadtest/harness.py``), then runs simulated residents in threads: each starts a
session through the JSON API and answers until the test stops.
Prints answers/s and p50/p95/p99 latency of ``POST /api/v1/sessions/{token}/answers``.
Bounded: at most ``--residents`` sessions, loopback only, stops by itself.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the load harness lives in the repository, not the package

from loadtest import harness  # noqa: E402  (a fresh database, gunicorn on loopback)


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
    args = parser.parse_args()
    with harness.database() as url, harness.served(url, workers=2, threads=4,
                                                    pool_size=5) as server:
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
                                     args=(server.port, latencies, errors, lock, 4))
                t.start()
                threads.append(t)
            time.sleep(0.01)
        wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    print(f"residents {args.residents}, concurrency {args.concurrency}, gunicorn 2 workers x 4 "
          f"threads, PostgreSQL")
    print(f"answers {len(latencies)} in {wall:.1f} s = {len(latencies) / wall:.0f} answers/s "
          f"(closed loop, no think time)")
    print(f"answer latency p50 {1000 * q[49]:.1f} ms, p95 {1000 * q[94]:.1f} ms, "
          f"p99 {1000 * q[98]:.1f} ms; errors {len(errors)} {sorted(set(errors))[:5]}")


if __name__ == "__main__":
    main()
