"""Baselines for ``bench_survey.py``: the least a Flask app under gunicorn can do.

``GET /bare`` returns a short page and touches nothing; ``POST /insert`` parses the same
form body the survey receives and stores it with one raw ``sqlite3`` INSERT and a commit, on
a connection tuned as ``loyalty/db.py`` tunes the app's (WAL, ``synchronous=FULL``,
foreign keys, 15 s busy timeout) and kept open per worker, as the app's connection pool does.

Run as ``gunicorn baseline_app:app`` with ``BENCH_BASELINE_DB`` naming the SQLite file, or
``BENCH_BASELINE_URL`` a PostgreSQL database (``postgresql://`` or SQLAlchemy's
``postgresql+psycopg://``): then the insert goes there through a raw psycopg connection kept
per thread, into its own table ``bench_answer``, committed (``synchronous_commit`` as the
server has it, like the app's connections).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import typing as t

from flask import Flask, redirect, request

SCHEMA = """
CREATE TABLE IF NOT EXISTS answer (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL,
    nps INTEGER,
    csat INTEGER,
    ces INTEGER,
    reason TEXT,
    improve TEXT,
    created_at TEXT NOT NULL
)
"""

_local = threading.local()


def connect(path: str) -> sqlite3.Connection:
    """A connection with the same settings as the app's (see ``loyalty.db._tune_sqlite``)."""
    conn = sqlite3.connect(path, timeout=15)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=15000")
    return conn


def init_db(path: str) -> None:
    conn = connect(path)
    with conn:
        conn.execute(SCHEMA)
    conn.close()


PG_SCHEMA = SCHEMA.replace("answer", "bench_answer").replace(
    "INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY"
)


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def init_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_answer")
        conn.execute(PG_SCHEMA)


def _connection() -> t.Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        if url := os.environ.get("BENCH_BASELINE_URL"):
            import psycopg

            conn = psycopg.connect(pg_dsn(url))
        else:
            conn = connect(os.environ["BENCH_BASELINE_DB"])
        _local.conn = conn
    return conn


_PARAM = "%s" if os.environ.get("BENCH_BASELINE_URL") else "?"
_TABLE = "bench_answer" if os.environ.get("BENCH_BASELINE_URL") else "answer"
_INSERT = (
    f"INSERT INTO {_TABLE} (token, nps, csat, ces, reason, improve, created_at)"
    f" VALUES ({', '.join([_PARAM] * 7)})"
)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/bare")
    def bare():
        return "<!doctype html><title>bare</title><p>Hello.</p>"

    @app.post("/insert/<token>")
    def insert(token: str):
        form = request.form
        conn = _connection()
        with conn.transaction() if hasattr(conn, "transaction") else conn:  # commits
            conn.execute(
                _INSERT,
                (
                    token,
                    _int_or_none(form.get("nps")),
                    _int_or_none(form.get("csat")),
                    _int_or_none(form.get("ces")),
                    form.get("reason"),
                    form.get("improve"),
                    dt.datetime.now(dt.UTC).isoformat(),
                ),
            )
        return redirect(f"/bare?token={token}", code=303)

    return app


app = create_app()
