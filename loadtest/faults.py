"""The fault suite: faults in the middle of the load, then proof that nothing was lost.

    python -m loadtest faults [--only kill-worker restart-postgres burst]

- ``kill-worker``: SIGKILL one gunicorn worker while residents answer; the master
  starts a new one.
- ``restart-postgres``: restart PostgreSQL while residents answer. To leave the
  machine's shared server alone this runs a private PostgreSQL cluster (initdb in a
  temporary folder, run as the ``postgres`` user, on its own port) and restarts that
  one with ``pg_ctl restart -m fast``; it needs root (CI runs as root) and the
  PostgreSQL server binaries (``/usr/lib/postgresql/*/bin``).
- ``burst``: duplicate, conflicting and out-of-order answer posts fired at once.

After each: every acknowledged answer is stored exactly once, every session's state
agrees with its answers, every interrupted session resumes from its link, and a new
resident completes a test on the same server (the app recovered by itself).
"""
from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from . import harness, residents, verify

API = residents.API


# --- a private PostgreSQL cluster --------------------------------------------------

def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary (newest installed version), or None."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else (shutil.which(name))


def can_run_private_cluster() -> str | None:
    """Why a private cluster cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (to run initdb as the postgres user)"
    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if not shutil.which("runuser"):
        return "runuser not found"
    return None


class PrivateCluster:
    """A throw-away PostgreSQL cluster on loopback, owned by the ``postgres`` user."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="lc-pg-"))
        self.data = self.folder / "data"
        self.port = harness.free_port()
        self.log = self.folder / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def pg_ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-l",
                          str(self.log), "-w", "-t", "60", *extra, action)

    def start(self) -> None:
        shutil.chown(self.folder, "postgres")
        self._as_postgres(pg_bin("initdb") or "initdb", "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "--no-sync")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=100 -c fsync=on")
        self.pg_ctl("start", "-o", options)

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")

    def remove(self) -> None:
        try:
            self.pg_ctl("stop", "-m", "immediate")
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


# --- load with a fault in the middle ------------------------------------------------

class BackgroundLoad:
    """Residents running in a thread (their own event loop) while the main thread acts."""

    def __init__(self, base_url: str, config: residents.Config,
                 codes: list[str] | None = None) -> None:
        self.base_url, self.config, self.codes = base_url, config, codes
        self.stats: residents.Stats | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.stats = asyncio.run(residents.run_residents(self.base_url, self.config,
                                                                 self.codes))
        except BaseException as exc:  # reported by join()
            self.error = exc

    def __enter__(self) -> BackgroundLoad:
        self.thread.start()
        return self

    def join(self) -> residents.Stats:
        self.thread.join(self.config.duration + 120)
        if self.error is not None:
            raise self.error
        if self.stats is None:
            raise RuntimeError("the load did not finish in time")
        return self.stats

    def __exit__(self, *exc: Any) -> None:
        self.thread.join(self.config.duration + 120)


def probe(base_url: str, answers: int = 5) -> str | None:
    """A new resident starts and answers a few questions (None when it works)."""
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            res = client.post(f"{API}/sessions", json={"consent": True, "background": {
                "age_band": "30-44"}})
            if res.status_code != 201:
                return f"start gave {res.status_code}"
            step = res.json()
            token = step["token"]
            for _ in range(answers):
                if step["status"] != "testing":
                    break
                item = step["item"]
                res = client.post(f"{API}/sessions/{token}/answers", json={
                    "position": item["position"], "version": item["version"], "choice": 1})
                if res.status_code != 200:
                    return f"answer gave {res.status_code}"
                step = res.json()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def load_with_fault(url: str, args: argparse.Namespace, name: str,
                    fault: Callable[[harness.Server], str]) -> dict[str, Any]:
    """Serve, run residents, inject ``fault`` a third of the way in, then check."""
    config = residents.Config(residents=args.residents, duration=args.duration,
                              think=args.think, ramp=min(5.0, args.duration / 6),
                              seed=args.seed, entry=args.entry)
    codes = harness.entry_codes(url, config)
    with harness.served(url, workers=args.workers, threads=args.threads) as server:
        asyncio.run(residents.warm_up(server.base_url, 2 * args.workers))
        with BackgroundLoad(server.base_url, config, codes) as load:
            time.sleep(args.duration / 3)
            started = time.monotonic()
            what = fault(server)
            took = time.monotonic() - started
            stats = load.join()
        unfinished = [t for t in stats.tokens if t not in stats.finished]
        resumable = asyncio.run(residents.check_resumable(server.base_url, unfinished,
                                                          stats.code_of))
        recovered = probe(server.base_url)
        workers_after = len(server.worker_pids())
    checked = verify.verify(url, stats.acknowledged)
    ok = not checked["problems"] and not resumable and recovered is None and \
        not any("gave-up" in e for e in stats.errors)
    print(f"\n== {name}: {what} (took {took:.1f} s)")
    print(stats.report())
    print(f"database: {checked['acknowledged_checked']} acknowledged answers checked, "
          f"{len(checked['problems'])} problems; {len(unfinished)} interrupted sessions "
          f"resumed, {len(resumable)} problems; new resident after the fault: "
          f"{recovered or 'ok'}; workers now {workers_after}")
    for problem in (checked["problems"] + resumable)[:20]:
        print("  PROBLEM", problem)
    print(f"== {name}: {'PASS' if ok else 'FAIL'}")
    return {"fault": name, "ok": ok, "what": what, "errors": dict(stats.errors),
            "answers": stats.answers(), "problems": checked["problems"] + resumable,
            "recovered": recovered is None}


def kill_worker(server: harness.Server) -> str:
    """SIGKILL each worker in turn (3 s apart), each time waiting for its replacement."""
    original = server.worker_pids()
    if not original:
        raise RuntimeError("no gunicorn worker found to kill")
    done = []
    for victim in original:
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = server.worker_pids()
            if victim not in now and len(now) >= len(original):
                break
            time.sleep(0.1)
        else:
            return f"SIGKILL worker {victim}: no replacement within 30 s"
        done.append(str(victim))
        time.sleep(3.0)
    return (f"SIGKILL workers {', '.join(done)} one after the other; the master replaced "
            f"each (now {server.worker_pids()})")


# --- duplicate and out-of-order bursts ----------------------------------------------

async def _burst(base_url: str, sessions: int) -> tuple[dict, list[str]]:
    """Fire duplicates, conflicts and out-of-order posts at once; returns acknowledged
    answers and problems (any 5xx, a 200 that disagrees with what was stored...)."""
    acknowledged: dict[str, dict[int, tuple[int, int]]] = {}
    problems: list[str] = []
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        async def one(n: int) -> None:
            res = await client.post(f"{API}/sessions", json={
                "consent": True, "background": {"age_band": "45-59"}})
            step = res.json()
            token = step["token"]
            acknowledged[token] = {}
            for _round in range(4):
                if step.get("status") != "testing":
                    return
                item = step["item"]
                position, version = item["position"], item["version"]
                same = {"position": position, "version": version, "choice": 1}
                other = {"position": position, "version": version, "choice": 2}
                ahead = {"position": position + 1, "version": version, "choice": 1}
                bodies = [same] * 6 + [other] * 2 + [ahead] * 2
                results = await asyncio.gather(*(client.post(
                    f"{API}/sessions/{token}/answers", json=b) for b in bodies))
                statuses = [r.status_code for r in results]
                if any(s >= 500 for s in statuses):
                    problems.append(f"burst got {statuses}")
                winners = {b["choice"] for b, r in zip(bodies, results)
                           if r.status_code == 200}
                if len(winners) != 1:
                    problems.append(f"burst: choices {winners} were all acknowledged at "
                                    f"position {position}")
                for b, r in zip(bodies, results):
                    if b is ahead and r.status_code != 409:
                        problems.append(f"an answer for a future position gave "
                                        f"{r.status_code}")
                if winners:
                    choice = winners.pop()
                    acknowledged[token][position] = (version, choice)
                    step = next(r.json() for b, r in zip(bodies, results)
                                if r.status_code == 200)
                    step["token"] = token

        await asyncio.gather(*(one(n) for n in range(sessions)))
    return acknowledged, problems


def burst(url: str, args: argparse.Namespace) -> dict[str, Any]:
    with harness.served(url, workers=args.workers, threads=args.threads) as server:
        asyncio.run(residents.warm_up(server.base_url, 2 * args.workers))
        acknowledged, problems = asyncio.run(_burst(server.base_url, 20))
        resumable = asyncio.run(residents.check_resumable(server.base_url,
                                                          list(acknowledged)))
        recovered = probe(server.base_url)
    checked = verify.verify(url, acknowledged)
    problems = problems + checked["problems"] + resumable
    ok = not problems and recovered is None
    print(f"\n== burst: 20 sessions x 4 rounds of 10 simultaneous posts (6 identical, 2 "
          f"conflicting, 2 for the next position); {checked['acknowledged_checked']} "
          f"acknowledged answers checked, {len(problems)} problems")
    for problem in problems[:20]:
        print("  PROBLEM", problem)
    print(f"== burst: {'PASS' if ok else 'FAIL'}")
    return {"fault": "burst", "ok": ok, "problems": problems, "recovered": recovered is None}


def main(args: argparse.Namespace) -> int:
    chosen = args.only or ["kill-worker", "restart-postgres", "burst"]
    results = []
    if "kill-worker" in chosen:
        with harness.database() as url:
            results.append(load_with_fault(url, args, "kill-worker", kill_worker))
    if "restart-postgres" in chosen:
        reason = can_run_private_cluster()
        if reason:
            print(f"\n== restart-postgres: SKIPPED ({reason})")
            results.append({"fault": "restart-postgres", "ok": None, "skipped": reason})
        else:
            with private_cluster() as cluster, harness.database(cluster.admin_url) as url:
                def restart(server: harness.Server) -> str:
                    cluster.restart()
                    return f"pg_ctl restart -m fast (private cluster on port {cluster.port})"

                results.append(load_with_fault(url, args, "restart-postgres", restart))
    if "burst" in chosen:
        with harness.database() as url:
            results.append(burst(url, args))
    failed = [r["fault"] for r in results if r.get("ok") is False]
    print("\nfault suite: " + ", ".join(
        f"{r['fault']} {'PASS' if r.get('ok') else 'SKIPPED' if r.get('ok') is None else 'FAIL'}"
        for r in results))
    return 1 if failed else 0
