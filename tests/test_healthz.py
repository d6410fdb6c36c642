"""``/healthz`` (issue 14): 200 only when the database answers and is migrated to head."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import _config

from loyalty.db import db


def test_ready_when_the_database_is_at_head(client):
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ok"}
    assert reply.headers["Cache-Control"] == "no-store"


def test_unavailable_while_the_migrations_are_behind(app, client):
    """A database one migration behind the code (a release whose ``db upgrade`` has not run
    yet): the load balancer is told 503, and nothing about why."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from loyalty.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    (head,) = ScriptDirectory.from_config(config).get_revisions("heads")
    previous = head.down_revision
    assert isinstance(previous, str)
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    try:
        reply = client.get("/healthz")
        assert reply.status_code == 503
        assert reply.get_json() == {"status": "unavailable"}
        assert previous not in reply.text and head.revision not in reply.text
    finally:
        with db.engine.begin() as conn:  # PostgreSQL's database is shared by the next tests
            conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head.revision}
            )
    assert client.get("/healthz").status_code == 200


def test_unavailable_when_the_database_cannot_be_read(tmp_path):
    """An empty database (never migrated) and one that cannot be opened: both 503."""
    from loyalty import create_app

    for url in (f"sqlite:///{tmp_path / 'empty.db'}", f"sqlite:///{tmp_path}/no/such/dir.db"):
        other = create_app({**_config(tmp_path, url)})
        try:
            reply = other.test_client().get("/healthz")
            assert reply.status_code == 503, url
            assert reply.get_json() == {"status": "unavailable"}
            assert "sqlite" not in reply.text.lower()
        finally:
            with other.app_context():
                db.engine.dispose()
