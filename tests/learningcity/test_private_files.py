"""The embedded SQLite database and its -wal/-shm files are readable by their owner only
(issue 16, finding 8: the file was world-readable, and it holds residents' answers)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

from learningcity import db


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files would be created rw-r--r--
    try:
        path = tmp_path / "data" / "learningcity.sqlite"
        engine = db.make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)  # WAL mode made both while open
            assert [_mode(f) for f in files] == [0o600] * 3
        engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    path.write_bytes(b"")
    path.chmod(0o644)
    shm = Path(f"{path}-shm")  # left over from a crash
    shm.write_bytes(b"")
    shm.chmod(0o664)
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        assert (_mode(path), _mode(shm)) == (0o600, 0o600)
    engine.dispose()
