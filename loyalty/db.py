"""The database extension, its declarative base, SQLite tuning, writes gathered per transaction."""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.orm import DeclarativeBase, Session

from .write_lock import WriteLockConnection

if t.TYPE_CHECKING:
    from flask import Flask

MIGRATIONS = str(Path(__file__).parent / "migrations")


class Base(DeclarativeBase):
    """Declarative base whose constraint names are stable across migrations."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

if t.TYPE_CHECKING:
    # Flask-SQLAlchemy builds ``db.Model`` at run time, out of reach of mypy: a class made
    # from Base's body (the same metadata, naming convention and registry) plus its mixins
    # (``query``, ``__bind_key__``, table names). To mypy the models are plain Base classes.
    Model = Base
else:
    Model = db.Model


# --- per transaction ----------------------------------------------------------------------
# A follow-up batch handles many answers in one transaction; what each would write alike (a
# day to count again, an account's health out of date) or read alike (the active webhooks)
# is written or read once for the batch.

_GATHERED = "loyalty.gathered_writes"
_MEMO = "loyalty.transaction_memo"


def write_before_commit(
    name: str, items: Iterable[Hashable], write: Callable[[set[t.Any]], t.Any]
) -> None:
    """Add ``items`` to the set ``name`` and call ``write`` with it once, just before the
    transaction commits. Only for idempotent marks: a savepoint rolled back keeps its items
    (marking one day too many only counts it again)."""
    db.session.connection()  # in a transaction, whose end forgets them
    gathered = db.session.info.setdefault(_GATHERED, {})
    gathered.setdefault(name, (write, set()))[1].update(items)


def write_marks(name: str, items: Iterable[Hashable], write: Callable[[set[t.Any]], t.Any]) -> None:
    """Marks that lock rows (an account's health, a case's clock): on SQLite, which has one
    writer and so no lock order to keep, gathered as :func:`write_before_commit` does; on
    PostgreSQL written now, in the order the caller takes its locks (a follow-up batch goes
    by account), so two batches cannot deadlock, and each item once per transaction."""
    if db.session.get_bind().dialect.name == "sqlite":
        write_before_commit(name, items, write)
        return
    written = db.session.info.setdefault(_MEMO, {}).setdefault(("written", name), set())
    new = set(items) - written
    if new:
        write(new)
        written.update(new)


def once_per_transaction(name: str, read: Callable[[], t.Any]) -> t.Any:
    """``read()``, remembered until the transaction ends (for what it does not change)."""
    db.session.connection()  # in a transaction, whose end forgets it
    memo = db.session.info.setdefault(_MEMO, {})
    if name not in memo:
        memo[name] = read()
    return memo[name]


@event.listens_for(Session, "before_commit")
def _write_gathered(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the transaction goes on
        return
    for write, items in session.info.pop(_GATHERED, {}).values():
        if items:
            write(items)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_transaction(session: Session, *args: t.Any) -> None:
    if session.in_nested_transaction() or (args and session.in_transaction()):
        return  # a savepoint ended; the transaction it was in goes on
    session.info.pop(_MEMO, None)
    if args:  # rolled back: nothing gathered is written
        session.info.pop(_GATHERED, None)


def init_app(app: Flask) -> None:
    if str(app.config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
        _queue_sqlite_writers(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True, compare_type=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _tune_sqlite)


def _queue_sqlite_writers(app: Flask) -> None:
    """SQLite connections whose writers queue for the write lock in the kernel
    (:mod:`loyalty.write_lock`), unless the configuration names its own connection class."""
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault("factory", WriteLockConnection)
    options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def rowcount(result: sa.Result[t.Any]) -> int:
    """The rows an UPDATE matched, as a claim ("set it where still unset") checks.

    ``Session.execute`` is typed to return a plain ``Result``; for an UPDATE without
    RETURNING it is a ``CursorResult``, which has the count.
    """
    return t.cast("sa.CursorResult[t.Any]", result).rowcount


#: How hard SQLite makes sure a commit is on the disk. In WAL mode ``NORMAL`` syncs only at
#: checkpoints, so a power cut can lose the last commits: answers the customer was thanked
#: for. ``FULL`` syncs the log at every commit. ``tests/benchmarks/bench_survey.py`` measures
#: what it costs (and sets this to ``NORMAL`` for its comparison server).
SQLITE_SYNCHRONOUS = "FULL"


def _tune_sqlite(dbapi_connection: t.Any, _record: t.Any) -> None:
    """WAL lets readers run beside a writer; foreign keys are off by default in SQLite;
    every commit is synced to the disk before it is acknowledged (:data:`SQLITE_SYNCHRONOUS`).

    SQLite's own lower() only knows ASCII, so a search for "ærø" would miss "ÆRØ ApS";
    Python's str.lower takes its place, as PostgreSQL's lower() already knows Danish.
    """
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _lower(value: t.Any) -> t.Any:
    return value.lower() if isinstance(value, str) else value
