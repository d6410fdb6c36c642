"""Migrations: an empty database migrates to head and nothing is left for autogenerate; SQLite's
tuning; writes gathered per transaction."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loyalty.db import db, once_per_transaction, write_before_commit, write_marks


def test_migrations_match_the_models(app):
    # The `app` fixture's database was made by running every migration from empty.
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        assert compare_metadata(context, db.metadata) == []
        assert conn.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1


def test_sqlite_runs_in_wal_mode_syncing_every_commit_with_foreign_keys(app):
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        # FULL (2): a commit is on the disk before the customer is thanked; NORMAL (1) would
        # lose the last answers on a power cut.
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000


def test_contact_emails_are_lower_cased_without_merging_anyone(app):
    from flask_migrate import downgrade, upgrade

    from loyalty.models import Contact

    downgrade(revision="c0ffee000005")
    # Rows written as that revision's tables had them: today's models have more columns.
    now = dt.datetime(2026, 1, 1)
    accounts = sa.table(
        "accounts", *(sa.column(c) for c in ("id", "name", "segment", "annual_value", "created_at"))
    )
    contacts = sa.table(
        "contacts",
        *(sa.column(c) for c in ("account_id", "email", "name", "language", "created_at")),
        sa.column("is_decision_maker"),
    )
    db.session.execute(
        sa.insert(accounts).values(
            id=1, name="Acme A/S", segment="b2b", annual_value=0, created_at=now
        )
    )
    emails = ["Mette@Acme.dk", "ann@acme.dk", "Ann@acme.dk", "BO@acme.dk", "Bo@acme.dk"]
    for e in emails:
        db.session.execute(
            sa.insert(contacts).values(
                account_id=1,
                email=e,
                name=e,
                language="da",
                created_at=now,
                is_decision_maker=False,
            )
        )
    db.session.commit()
    upgrade()
    db.session.expire_all()
    stored = db.session.scalars(sa.select(Contact.email).order_by(Contact.id)).all()
    # "Ann@" would clash with "ann@", and only the older of the two "Bo"s is lower-cased.
    assert stored == ["mette@acme.dk", "ann@acme.dk", "Ann@acme.dk", "bo@acme.dk", "Bo@acme.dk"]


def test_gathered_writes_go_once_at_commit_and_not_at_all_on_rollback(app):
    calls: list[set] = []
    write_before_commit("test", [1, 2], calls.append)
    with db.session.begin_nested():  # a savepoint released is not the commit
        write_before_commit("test", [2, 3], calls.append)
    assert calls == []
    db.session.commit()
    assert calls == [{1, 2, 3}]
    write_before_commit("test", [4], calls.append)
    db.session.rollback()
    db.session.commit()
    assert calls == [{1, 2, 3}]  # rolled back: never written


def test_marks_that_lock_rows_go_at_once_on_postgresql_and_once_per_transaction(app):
    calls: list[set] = []
    write_marks("test", [5, 6], calls.append)
    write_marks("test", [6, 7], calls.append)
    if db.session.get_bind().dialect.name == "sqlite":
        assert calls == []  # one writer: no lock order to keep, so gathered
        db.session.commit()
        assert calls == [{5, 6, 7}]
    else:
        assert calls == [{5, 6}, {7}]  # now, in the caller's order; each item once
        db.session.commit()
        write_marks("test", [5], calls.append)  # a new transaction marks again
        assert calls[-1] == {5}


def test_a_read_once_per_transaction_is_read_again_in_the_next(app):
    reads = []

    def read() -> int:
        reads.append(1)
        return len(reads)

    db.session.execute(sa.text("SELECT 1"))  # in a transaction
    assert once_per_transaction("test", read) == once_per_transaction("test", read) == 1
    db.session.commit()
    db.session.execute(sa.text("SELECT 1"))
    assert once_per_transaction("test", read) == 2
