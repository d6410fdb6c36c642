"""Migrations: an empty database migrates to head and nothing is left for autogenerate."""

from __future__ import annotations

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


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000


def test_contact_emails_are_lower_cased_without_merging_anyone(app):
    from flask_migrate import downgrade, upgrade

    from loyalty.models import Account, Contact

    downgrade(revision="c0ffee000005")
    account = Account(name="Acme A/S", segment="b2b")
    emails = ["Mette@Acme.dk", "ann@acme.dk", "Ann@acme.dk", "BO@acme.dk", "Bo@acme.dk"]
    db.session.add_all(Contact(account=account, email=e, name=e, language="da") for e in emails)
    db.session.commit()
    upgrade()
    db.session.expire_all()
    stored = db.session.scalars(sa.select(Contact.email).order_by(Contact.id)).all()
    # "Ann@" would clash with "ann@", and only the older of the two "Bo"s is lower-cased.
    assert stored == ["mette@acme.dk", "ann@acme.dk", "Ann@acme.dk", "bo@acme.dk", "Bo@acme.dk"]
