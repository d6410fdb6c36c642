"""SQLite writers that queue for the write lock and go the moment it is free, with a deadline.

SQLite lets one connection write at a time; the others retry through its busy handler,
which sleeps between tries (1, 2, 5, ... up to 100 ms) whether or not the lock was freed
meanwhile, and a newcomer starts again at 1 ms: under load a few saves wait seconds while
the disk sits idle (``tests/benchmarks/bench_survey.py``, 16 clients: submit p99 over 1 s).

A :class:`WriteLockConnection` takes an exclusive ``flock`` on ``<database>-writelock``
before its first write statement and issues ``BEGIN IMMEDIATE``, so its transaction holds
SQLite's write lock from the start; it drops the ``flock`` when the transaction ends
(commit, rollback, close, or SQLite rolling back by itself). Every process and thread on
the database (gunicorn workers and their threads, ``flask work``, the dispatcher, the CLI)
then waits until the writer before it is done, and goes the moment it is (threads of one
process asleep on a lock of the process, one of them polling the flock every millisecond),
never longer than SQLite's busy timeout. Reading takes no lock: WAL readers never wait for
a writer.

* No deadlock: the holder of the ``flock`` is a connection in a write transaction, which
  waits for nothing the waiters hold (a writer outside this class, e.g. the sqlite3 shell,
  still takes SQLite's lock and is waited for by the busy timeout, as before). One thread
  opening a second write transaction while it holds one (it would wait for itself) goes
  without the ``flock`` and meets the busy timeout, as it always did.
* A killed process frees its ``flock`` with its files: ``kill -9`` leaves no lock behind.
* A database in memory or a temporary one (no file name) takes no ``flock``.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import typing as t

#: statements that start a write transaction when none is open (pysqlite would issue a
#: deferred BEGIN before the first three itself)
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
#: statements that open a transaction SQLite-side, or write outside one
_OTHER_STARTS = ("SAVEPOINT", "BEGIN", "CREATE", "DROP", "ALTER")

#: the longest a writer waits for the lock: SQLite's busy timeout (loyalty/db.py)
WAIT = 15.0
#: how often the one waiting thread of a process tries the flock
POLL = 0.001
#: per database file, the lock this process's writers queue on before the flock
_queues: dict[str, threading.Lock] = {}


def _process_queue(path: str) -> threading.Lock:
    with _holders_lock:
        return _queues.setdefault(path, threading.Lock())


#: threads holding a flock (how many): a second write in the same thread must not wait
_holders: dict[int, int] = {}
_holders_lock = threading.Lock()


def _note_holder(thread: int, change: int) -> None:
    with _holders_lock:
        count = _holders.get(thread, 0) + change
        if count > 0:
            _holders[thread] = count
        else:
            _holders.pop(thread, None)


def lock_path(database: str) -> str | None:
    """The lock file beside ``database``, or None when it has no file (memory, temporary)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + "-writelock"


class WriteLockConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions take the database's ``flock`` first."""

    def __init__(self, database: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._lock_path = lock_path(os.fspath(database)) if database is not None else None
        self._lock_fd: int | None = None
        self._locked = False
        self._owner = 0  # the thread that took the flock
        self._queue: threading.Lock | None = None  # this process's queue, while held

    def cursor(self, factory: t.Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or WriteLockCursor)

    def begin_write(self, statement: str) -> None:
        """Before ``statement``: when it starts a write transaction, queue for the flock."""
        if self._locked or self._lock_path is None or self.in_transaction:
            return
        word = statement.lstrip()[:9].upper()
        write = word.startswith(_WRITES)
        if not write and not word.startswith(_OTHER_STARTS):
            return
        me = threading.get_ident()
        if me in _holders:  # this thread already writes elsewhere: no waiting for itself
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._take_flock(self._lock_fd)
        self._locked, self._owner = True, me
        _note_holder(me, 1)
        if write and self.isolation_level is not None:
            try:
                # pysqlite's own BEGIN is deferred: in WAL a transaction that read first
                # could then fail to write. Explicitly begun, pysqlite adds no BEGIN.
                super().execute("BEGIN IMMEDIATE")
            except BaseException:
                self.end_write()
                raise

    def _take_flock(self, fd: int) -> None:
        """Wait for the flock at most ``WAIT`` (SQLite's busy timeout): a writer that hangs
        (stuck in a transaction) makes the others fail as SQLite would, with "database is
        locked" (a 503 to a customer), never hang with it.

        Threads of one process queue on a lock of the process first, which they wait for
        asleep and are woken from at once; so only one per process polls the flock, which
        has no timeout of its own, and it polls at 1 ms, unlike SQLite's busy handler, whose
        sleeps grow to 100 ms while the lock may long be free.
        """
        deadline = time.monotonic() + WAIT
        queue = _process_queue(self._lock_path or "")
        if not queue.acquire(timeout=WAIT):
            raise sqlite3.OperationalError("database is locked (waited for the write lock)")
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise sqlite3.OperationalError(
                            "database is locked (waited for the write lock)"
                        ) from None
                    time.sleep(POLL)
        except BaseException:
            queue.release()
            raise
        self._queue = queue

    def end_write(self) -> None:
        """After a statement, commit or rollback: drop the flock once no transaction is open."""
        if self._locked and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        self._locked = False
        _note_holder(self._owner, -1)
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if self._queue is not None:
            queue, self._queue = self._queue, None
            queue.release()

    def execute(self, sql: str, *args: t.Any) -> sqlite3.Cursor:
        return self.cursor().execute(sql, *args)

    def executemany(self, sql: str, *args: t.Any) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, *args)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._locked:
                self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


class WriteLockCursor(sqlite3.Cursor):
    """Takes its connection's flock before a statement that starts a write transaction."""

    connection: WriteLockConnection

    def execute(self, sql: str, *args: t.Any) -> WriteLockCursor:
        self.connection.begin_write(sql)
        try:
            super().execute(sql, *args)
        finally:
            self.connection.end_write()
        return self

    def executemany(self, sql: str, *args: t.Any) -> WriteLockCursor:
        self.connection.begin_write(sql)
        try:
            super().executemany(sql, *args)
        finally:
            self.connection.end_write()
        return self
