"""Migrations: an empty database migrates to head and nothing is left for autogenerate."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loyalty.db import db


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
