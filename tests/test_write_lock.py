"""SQLite writers queue for a flock beside the database (loyalty.write_lock)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
import time

import pytest

from loyalty.db import db
from loyalty.write_lock import WriteLockConnection, lock_path


def _connect(path) -> WriteLockConnection:
    conn = sqlite3.connect(path, timeout=15, factory=WriteLockConnection, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _flock_free(path) -> bool:
    fd = os.open(lock_path(str(path)), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "w.db"
    conn = _connect(path)
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.close()
    return path


def test_the_app_uses_it_on_sqlite(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with db.engine.connect() as conn:
        assert isinstance(conn.connection.dbapi_connection, WriteLockConnection)


def test_a_write_transaction_holds_the_flock_from_its_first_write_to_its_end(database):
    conn = _connect(database)
    conn.execute("SELECT count(*) FROM t").fetchall()
    assert _flock_free(database)  # reading takes nothing
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.in_transaction and not _flock_free(database)
    conn.commit()
    assert _flock_free(database)
    conn.execute("UPDATE t SET n = 2")
    conn.rollback()
    assert _flock_free(database)
    conn.execute("DELETE FROM t")
    conn.close()  # rolled back by closing
    assert _flock_free(database)


def test_the_transaction_is_begun_immediate(database):
    """A second writer cannot even start: SQLite's write lock is taken at BEGIN."""
    first = _connect(database)
    first.execute("INSERT INTO t VALUES (1)")
    other = sqlite3.connect(database, timeout=0)  # no flock, no waiting
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
    first.commit()
    other.close()
    first.close()


def test_writers_in_threads_wait_in_turn_and_lose_nothing(database):
    conns = [_connect(database) for _ in range(8)]
    failures: list[BaseException] = []

    def write(conn: WriteLockConnection) -> None:
        try:
            for n in range(50):
                conn.execute("INSERT INTO t VALUES (?)", (n,))
                conn.commit()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert conns[0].execute("SELECT count(*) FROM t").fetchone()[0] == 400
    for conn in conns:
        conn.close()


def test_a_second_write_in_the_same_thread_does_not_wait_for_itself(database):
    """It meets SQLite's busy timeout, as without the flock: an error, not a hang."""
    first = _connect(database)
    first.execute("INSERT INTO t VALUES (1)")
    second = sqlite3.connect(database, timeout=0.2, factory=WriteLockConnection)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.execute("INSERT INTO t VALUES (2)")
    assert time.monotonic() - started < 5
    second.rollback()  # as SQLAlchemy does after an error
    first.commit()
    second.execute("INSERT INTO t VALUES (3)")  # and it takes the flock again once free
    assert not _flock_free(database)
    second.commit()
    assert _flock_free(database)
    first.close()
    second.close()


def _hold_and_die(path: str, ready) -> None:
    conn = _connect(path)
    conn.execute("INSERT INTO t VALUES (1)")
    ready.set()
    time.sleep(60)


def test_a_killed_writer_leaves_no_lock_behind(database):
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_and_die, args=(str(database), ready))
    holder.start()
    try:
        assert ready.wait(30)
        assert not _flock_free(database)
        holder.kill()
        holder.join(10)
        conn = _connect(database)
        conn.execute("INSERT INTO t VALUES (2)")
        conn.commit()
        assert conn.execute("SELECT n FROM t").fetchall() == [(2,)]
        conn.close()
    finally:
        if holder.is_alive():
            holder.kill()


def test_a_database_without_a_file_takes_no_flock():
    assert lock_path(":memory:") is None
    assert lock_path("") is None
    conn = sqlite3.connect(":memory:", factory=WriteLockConnection)
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()


def test_a_writer_that_hangs_makes_the_others_fail_in_time_not_hang(database, monkeypatch):
    """Another process holds the lock and never lets go: a writer here waits at most the
    deadline, then fails as SQLite would ("database is locked"), as does one queued behind
    it in the same process; once the holder is gone, writing works again."""
    from loyalty import write_lock

    monkeypatch.setattr(write_lock, "WAIT", 0.5)
    fd = os.open(lock_path(str(database)), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # an open file description of its own, like a process
    errors: list[str] = []

    def write() -> None:
        conn = _connect(database)
        try:
            conn.execute("INSERT INTO t (n) VALUES (1)")
        except sqlite3.OperationalError as exc:
            errors.append(str(exc))
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - started < 3
    assert len(errors) == 2 and all("database is locked" in e for e in errors)
    os.close(fd)  # the holder goes
    conn = _connect(database)
    conn.execute("INSERT INTO t (n) VALUES (2)")
    conn.commit()
    assert conn.execute("SELECT n FROM t").fetchall() == [(2,)]
    conn.close()
