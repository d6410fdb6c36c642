"""When the database cannot store anything: a full or read-only disk, a database refusing writes.

An answer that cannot be stored is not an error in the app: the customer is asked to try
again in a moment (503 and ``Retry-After``, their answers still in the form), and staff
pages say the database is in trouble, so somebody looks before customers give up. The
failed transaction is rolled back by the caller, so nothing half-written remains.

Staff pages learn of the trouble two ways: this process saw a write refused within
:data:`REMEMBER` (each server process remembers its own), and a cheap check, made at most
every :data:`CHECK_EVERY` per process, of what every process would run into (SQLite: the
file or its folder not writable, the disk nearly full, ``query_only``; PostgreSQL: new
transactions read-only or the server in recovery).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError

from .db import db

#: how long a refused write keeps the staff banner up in the process that saw it
REMEMBER = 300.0
CHECK_EVERY = 15.0
#: Retry-After of the customer's "try again in a moment" page, in seconds
RETRY_AFTER = 30
#: SQLite's and PostgreSQL's ways of saying the storage refuses writes
_SQLITE_WORDS = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")
_PG_STATES = {"25006", "53100", "53200", "53300", "57P01", "57P02", "57P03", "08006", "08001"}
#: psycopg's words when the server cannot be reached or turns a new connection away: it
#: raises these before any server answer, so they carry no SQLSTATE.
_PG_WORDS = ("connection failed", "server closed the connection", "connection is lost")
_MIN_FREE_BYTES = 1 << 20

_state = {"refused_at": 0.0, "checked_at": 0.0, "checked": False}
_lock = threading.Lock()


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot store anything now (rather than a bug, or
    a conflict with another writer that a retry resolves)."""
    if not isinstance(exc, DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", None)
    if state in _PG_STATES:
        return True
    message = str(exc.orig).lower()
    words = _SQLITE_WORDS + (_PG_WORDS if state is None else ())
    return isinstance(exc, OperationalError) and any(word in message for word in words)


def note_refusal() -> None:
    """Remember that a write was refused (the staff banner of this process goes up)."""
    with _lock:
        _state["refused_at"] = time.monotonic()


def in_trouble() -> bool:
    """For staff pages: a write was refused lately here, or the database refuses them now."""
    now = time.monotonic()
    with _lock:
        if now - _state["refused_at"] < REMEMBER:
            return True
        if now - _state["checked_at"] < CHECK_EVERY:
            return bool(_state["checked"])
        _state["checked_at"] = now
    refused = _refuses_writes()
    with _lock:
        _state["checked"] = refused
    return refused


def forget() -> None:
    """For tests: forget what was seen and checked."""
    with _lock:
        _state.update(refused_at=0.0, checked_at=0.0, checked=False)


def checked_now(refused: bool = False) -> None:
    """For tests that count a page's queries: as if the database had just been checked, so
    no check runs in the middle of the count."""
    with _lock:
        _state.update(checked_at=time.monotonic(), checked=refused)


def _refuses_writes() -> bool:
    try:
        engine = db.engine
        if engine.dialect.name == "sqlite":
            return _sqlite_refuses(engine)
        with engine.connect() as conn:
            read_only = conn.scalar(sa.text("SHOW default_transaction_read_only"))
            recovering = conn.scalar(sa.text("SELECT pg_is_in_recovery()"))
        return read_only == "on" or bool(recovering)
    except sa.exc.SQLAlchemyError:
        return True  # cannot even ask: that is trouble too


def _sqlite_refuses(engine: sa.Engine) -> bool:
    name = engine.url.database
    if not name or name == ":memory:":
        return False
    path = Path(name)
    folder = path.parent
    if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
        return True
    if shutil.disk_usage(folder).free < _MIN_FREE_BYTES:
        return True
    statvfs = os.statvfs(folder)
    if statvfs.f_flag & os.ST_RDONLY:
        return True
    with engine.connect() as conn:
        return bool(conn.scalar(sa.text("PRAGMA query_only")))


def retry_after() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER)}
