"""The stage for load and fault runs: a fresh PostgreSQL database with the demo bank and
``learningcity serve`` (gunicorn) on loopback, both removed afterwards.

Everything here is bounded and local: the server binds 127.0.0.1 only, the database
is created for the run and dropped after it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("LEARNINGCITY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECRET = "loadtest-secret-" + "x" * 40


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(admin_url: str = PG) -> Iterator[str]:
    """A fresh, migrated database with districts and the demo item bank; dropped after."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"lc_load_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    try:
        prepare(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str) -> None:
    """Migrate and load the districts and the demo bank (published demo calibration)."""
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


#: what the load campaign's frame knows of a resident: every second one has everything
#: the test's background form asks (the test starts at once), the others only age band
#: and sex (the resident fills in the form first)
_OCCUPATIONS = ("farmer", "industrial_worker", "migrant_worker", "civil_servant", "retired")
_EDUCATION = ("primary", "junior", "senior", "college")
_AGE_BANDS = ("18-29", "30-44", "45-59", "60-69", "70+")


def invitation_campaign(url: str, n: int) -> list[str]:
    """A campaign in district D01 asking for the demo ability test, with a frame of ``n``
    residents drawn whole (4 streets x 5 age bands) and invited; returns the ``n`` codes.

    It goes through the same services as the campaign pages (frame import, design,
    draw, invitations), so the load run starts residents exactly as field work does.
    """
    import datetime as dt

    import transaction

    from learningcity import db
    from learningcity.db import utcnow
    from monitoring.fieldwork import draw, frames, invitations
    from monitoring.fieldwork.campaigns import create_campaign
    from monitoring.fieldwork.window import local_input

    lines = ["person_id,street,age_band,sex,occupation,education"]
    for k in range(n):
        full = k % 2 == 0
        lines.append(f"P{k:06d},S0{k % 4 + 1},{_AGE_BANDS[k // 4 % 5]},"
                     f"{'female' if k % 3 else 'male'},"
                     f"{_OCCUPATIONS[k % 5] if full else ''},{_EDUCATION[k % 4] if full else ''}")
    engine = db.make_engine(url)
    manager = transaction.TransactionManager(explicit=True)
    try:
        with manager:
            session = db.tm_session(db.session_factory(engine), manager)
            now = utcnow()
            campaign = create_campaign(
                session, district_code="D01", user="loadtest", name="Load test campaign",
                test_instrument="LLA", survey_code=None, mode="sample",
                opens_at=local_input(now - dt.timedelta(minutes=5)),
                closes_at=local_input(now + dt.timedelta(days=1)))
            spec = frames.FrameSpec("unit", "person_id", ["street", "age_band"])
            frames.import_frame(session, campaign, "load_frame.csv",
                                ("\n".join(lines) + "\n").encode(), spec, "loadtest")
            draw.set_design(session, campaign, "loadtest", n=n, allocation="proportional",
                            min_per_stratum=1)
            draw.draw_sample(session, campaign, "loadtest", seed=1)
            codes = [i.code for i in invitations.issue_invitations(session, campaign,
                                                                   "loadtest", secret=SECRET)]
    finally:
        engine.dispose()
    if len(codes) != n:
        raise RuntimeError(f"the load campaign invited {len(codes)} residents, not {n}")
    return codes


def entry_codes(url: str, config: Any) -> list[str] | None:
    """For the invitation entry (``config.entry``): a drawn campaign in the run's
    database with enough codes for the run (:func:`residents.codes_needed`)."""
    from .residents import codes_needed

    if config.entry != "invitation":
        return None
    return invitation_campaign(url, codes_needed(config))


def write_ini(folder: Path, url: str, *, workers: int = 2, threads: int = 4,
              port: int, pool_size: int = 4, statement_timeout_ms: int = 15000) -> Path:
    """A production-like .ini (gunicorn section, pool, retry, limits) for one run."""
    ini = folder / "loadtest.ini"
    ini.write_text(
        "[app:main]\nuse = egg:learningcity\n"
        f"sqlalchemy.url = {url}\n"
        f"learningcity.secret = {SECRET}\nlearningcity.require_secret = false\n"
        f"sqlalchemy.pool_size = {pool_size}\nsqlalchemy.max_overflow = {pool_size}\n"
        "sqlalchemy.pool_timeout = 10\n"
        f"sqlalchemy.statement_timeout_ms = {statement_timeout_ms}\n"
        "retry.attempts = 5\n"
        "\n[server:main]\nuse = egg:gunicorn#main\n"
        f"bind = 127.0.0.1:{port}\nworkers = {workers}\nworker_class = gthread\n"
        f"threads = {threads}\ntimeout = 30\ngraceful_timeout = 10\nkeepalive = 75\n"
        "loglevel = warning\n")
    return ini


class Server:
    """``learningcity serve`` in a child process (its own process group)."""

    def __init__(self, ini: Path, port: int, log: Path) -> None:
        self.ini, self.port, self.log = ini, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        exe = shutil.which("learningcity") or str(Path(sys.executable).parent / "learningcity")
        env = dict(os.environ)
        for key in ("LEARNINGCITY_DATABASE_URL", "LEARNINGCITY_MONITORING_URL"):
            env.pop(key, None)  # the run's .ini names its own database
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([exe, "serve", "--ini", str(self.ini)], cwd=ROOT,
                                            stdout=log, stderr=log, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped at start; see {self.log}:\n"
                                   + self.log.read_text()[-2000:])
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the server did not answer /healthz within {timeout} s")

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        if self.process is None:
            return []
        master = self.process.pid
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.append(int(entry.name))
        return sorted(children)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def served(url: str, *, workers: int = 2, threads: int = 4, pool_size: int = 4
           ) -> Iterator[Server]:
    """gunicorn serving the app on ``url``'s database, on a free loopback port."""
    with tempfile.TemporaryDirectory(prefix="lc-load-") as tmp:
        port = free_port()
        ini = write_ini(Path(tmp), url, workers=workers, threads=threads, port=port,
                        pool_size=pool_size)
        server = Server(ini, port, Path(tmp) / "server.log")
        try:
            server.start()
            yield server
        finally:
            server.stop()
