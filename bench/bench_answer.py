"""Server time per answer of the adaptive test, in one process (default) or served by gunicorn.

    python bench/bench_answer.py [--residents 20] [--backend both] [--seed 1] [--profile]
    python bench/bench_answer.py --served [--residents 40] [--concurrency 20]

In-process (the default figure): the WSGI app is built in this process
(``learningcity.main`` with test-like settings) on a fresh database with the districts
and the demo item bank (``loadtest/harness.py``: a SQLite file in a temporary folder,
and a throw-away PostgreSQL database when the local server answers). Simulated
residents, one after another, driven through ``webtest.TestApp``:

- JSON: ``POST /api/v1/sessions`` (consent and background), then
  ``POST /api/v1/sessions/{token}/answers`` until the test stops;
- HTML: the resident pages as a phone without JavaScript uses them: the consent form,
  the background form, then for every item the answer form is posted and the redirect
  followed (``POST /t/{token}/answer`` + ``GET /t/{token}``).

A WSGI middleware times each request inside the server (from the call to the last
byte of the body), so WebTest's own work is not counted. Prints the median and p95
server time per answer (ms) for each path; for HTML an answer is the POST plus the GET
after its redirect. Seeded: the residents' choices and the session seeds come from
``--seed``, so a run repeats the same tests.

Served (``--served``): gunicorn (2 workers, 4 threads) on PostgreSQL on a free loopback
port; concurrent residents in threads through the JSON API; prints answers/s and
p50/p95/p99 latency of ``POST /api/v1/sessions/{token}/answers`` as seen by the client.

Bounded: at most ``--residents`` sessions per path and backend, at most 60 answers
each, loopback only, stops by itself; the databases are removed afterwards.
"""
from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the load harness lives in the repository, not the package

from loadtest import harness  # noqa: E402  (a fresh database, gunicorn on loopback)

MAX_ANSWERS = 60
BACKGROUND = {"age_band": "60-69", "district": "D01", "occupation": "retired",
              "education": "junior"}


# --- in process ------------------------------------------------------------------------

class Timed:
    """WSGI middleware: the server time of every request, body included, in seconds."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.times: list[tuple[str, str, float]] = []
        self.profile: cProfile.Profile | None = None
        self.profile_done: cProfile.Profile | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        if self.profile is not None:
            self.profile.enable()
        t0 = time.perf_counter()
        body = list(self.app(environ, start_response))  # the app's whole response
        elapsed = time.perf_counter() - t0
        if self.profile is not None:
            self.profile.disable()
        self.times.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], elapsed))
        return iter(body)

    def last(self) -> float:
        return self.times[-1][2]


class SeededSeeds:
    """Stands in for ``secrets`` in the assessment services: session seeds from ``--seed``
    (tokens stay random: ``token_urlsafe`` is the real one)."""

    def __init__(self, real: Any, seed: int) -> None:
        self.real, self.rng = real, random.Random(seed)

    def randbits(self, k: int) -> int:
        return self.rng.getrandbits(k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def make_app(url: str) -> Any:
    """The real WSGI application on ``url`` with test-like settings (no demo loading)."""
    from learningcity import main

    return main({}, **{
        "sqlalchemy.url": url,
        "learningcity.secret": harness.SECRET,
        "learningcity.require_secret": "false",
        "learningcity.auto_migrate": "false",
        "learningcity.demo_content": "false",
        "pyramid.default_locale_name": "zh_CN",
    })


def json_resident(client: Any, timed: Timed, rng: random.Random) -> list[float]:
    """One resident through the JSON API; the server time of each answer."""
    step = client.post_json("/api/v1/sessions", {"consent": True, "background": BACKGROUND},
                            status=201).json
    token, times = step["token"], []
    while step["status"] == "testing" and len(times) < MAX_ANSWERS:
        item = step["item"]
        body = {"position": item["position"], "version": item["version"],
                "choice": rng.randint(1, len(item["options"]))}
        step = client.post_json(f"/api/v1/sessions/{token}/answers", body, status=200).json
        times.append(timed.last())
    if step["status"] != "finished":
        raise RuntimeError(f"the JSON test did not finish: {step['status']}")
    return times


def html_resident(client: Any, timed: Timed, rng: random.Random) -> list[tuple[float, float]]:
    """One resident through the pages without JavaScript; (POST, GET) server times."""
    form = client.get("/test").forms[0]
    form["consent"] = "yes"
    page = form.submit(status=303).follow()
    if "item-form" not in page.forms:  # the background form first
        form = page.forms[0]
        for name, value in BACKGROUND.items():
            if name in form.fields:
                form[name] = value
        page = form.submit(status=303).follow()
    times = []
    while "item-form" in page.forms and len(times) < MAX_ANSWERS:
        form = page.forms["item-form"]
        form["choice"] = str(rng.randint(1, len(form.fields["choice"][0].options)))
        posted = form.submit(status=303)
        post_time = timed.last()
        page = posted.follow()
        times.append((post_time, timed.last()))
        while 300 <= page.status_int < 400:  # the last answer: on to the result page
            page = page.follow()
    if "/result" not in page.request.path:
        raise RuntimeError(f"the HTML test did not end on the result page: {page.request.path}")
    return times


def _ms(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
    return f"median {1000 * statistics.median(values):6.2f} ms, p95 {1000 * q[94]:6.2f} ms"


def in_process(url: str, label: str, residents: int, seed: int, profile: bool) -> None:
    """Run both paths on one database and print the server time per answer."""
    import webtest

    from assessment import services

    services.secrets = SeededSeeds(services.secrets, seed)
    timed = Timed(make_app(url))
    client = webtest.TestApp(timed, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    json_resident(client, timed, random.Random(-1))  # warm the worker's caches
    html_resident(client, timed, random.Random(-2))
    if profile:
        timed.profile = timed.profile_done = cProfile.Profile()
    json_times: list[float] = []
    for k in range(residents):
        json_times += json_resident(client, timed, random.Random(seed * 1000 + k))
    html_times: list[tuple[float, float]] = []
    for k in range(residents):
        client.reset()  # a new phone: its own cookies
        html_times += html_resident(client, timed, random.Random(seed * 1000 + 500 + k))
    print(f"{label}: {residents} residents per path, seed {seed}, in process (WebTest)")
    print(f"  JSON  answer (POST .../answers)     {len(json_times):4d} answers  "
          f"{_ms(json_times)}")
    both = [p + g for p, g in html_times]
    print(f"  HTML  answer (POST + redirect GET)  {len(both):4d} answers  {_ms(both)}")
    print(f"        of which POST /t/.../answer              {_ms([p for p, _ in html_times])}")
    print(f"        of which GET /t/... after the redirect   {_ms([g for _, g in html_times])}")
    timed.profile = None
    print(f"  floor: the answer POST with an unknown token   {_ms(floor(client, timed))}")
    if profile:
        stats = pstats.Stats(timed.profile_done).sort_stats("cumulative")
        stats.print_stats(45)
        stats.sort_stats("tottime").print_stats(30)


def floor(client: Any, timed: Timed, n: int = 200) -> list[float]:
    """Server time of what every answer request pays before and after the answer itself:
    routing, tweens, the body check, the session SELECT (no row), a 404 and the commit."""
    unknown = "x" * 32
    times = []
    for _ in range(n):
        client.post_json(f"/api/v1/sessions/{unknown}/answers",
                         {"position": 1, "version": 1, "choice": 1}, status=404)
        times.append(timed.last())
    return times


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A fresh, migrated SQLite file with the districts and the demo bank."""
    with tempfile.TemporaryDirectory(prefix="lc-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        harness.prepare(url)
        yield url


def run_in_process(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "sqlite":
            with sqlite_database() as url:
                in_process(url, "SQLite", args.residents, args.seed, args.profile)
            continue
        try:
            context = harness.database()
            url = context.__enter__()
        except Exception as exc:  # no local PostgreSQL: say so, do not fail the SQLite run
            print(f"PostgreSQL: skipped ({exc.__class__.__name__}: {exc})")
            continue
        try:
            in_process(url, "PostgreSQL", args.residents, args.seed, args.profile)
        finally:
            context.__exit__(None, None, None)


# --- served by gunicorn ------------------------------------------------------------------

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
    while step.get("status") == "testing" and n < MAX_ANSWERS:
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


def run_served(args: argparse.Namespace) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--served", action="store_true",
                        help="gunicorn on PostgreSQL instead of the in-process figure")
    parser.add_argument("--residents", type=int, default=None,
                        help="residents per path (default 20 in process, 40 served)")
    parser.add_argument("--concurrency", type=int, default=20, help="served only")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                        help="in process only")
    parser.add_argument("--seed", type=int, default=1, help="in process only")
    parser.add_argument("--profile", action="store_true",
                        help="in process: print a cProfile of the timed requests")
    args = parser.parse_args()
    if args.served:
        args.residents = args.residents or 40
        run_served(args)
    else:
        args.residents = args.residents or 20
        run_in_process(args)


if __name__ == "__main__":
    main()
