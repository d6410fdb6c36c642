"""Configuration layers and the generated secret key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from loyalty import create_app
from loyalty.config import SETTINGS


def make(tmp_path: Path, **config):
    return create_app({"INSTANCE_PATH": tmp_path, **config})


def test_secret_key_is_generated_once_into_the_instance(tmp_path):
    first = make(tmp_path).config["SECRET_KEY"]
    again = make(tmp_path).config["SECRET_KEY"]
    assert first == again and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_layers_defaults_instance_file_env_then_test(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text(
        'BASE_URL = "https://from-file.example"\nINVITATION_DAYS = 10\n'
    )
    monkeypatch.setenv("LOYALTY_INVITATION_DAYS", "14")
    app = make(tmp_path)
    assert app.config["BASE_URL"] == "https://from-file.example"
    assert app.config["INVITATION_DAYS"] == 14  # environment beats the file
    assert app.config["MAIL_URL"] == "outbox:"  # default
    assert make(tmp_path, INVITATION_DAYS=3).config["INVITATION_DAYS"] == 3


def test_default_database_is_sqlite_in_the_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("LOYALTY_DATABASE_URL", raising=False)
    assert make(tmp_path).config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/loyalty.db"


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in SETTINGS:
        assert f"LOYALTY_{name}" in readme, f"LOYALTY_{name} is not in the README"


def test_gunicorn_workers_build_the_sentiment_word_lists_before_serving(monkeypatch):
    """... and freeze what lives for the worker's life out of the garbage collector's sight."""
    import gc
    import runpy
    from pathlib import Path

    from loyalty import sentiment

    monkeypatch.setattr(sentiment.lexicon, "_resources_cache", None)
    conf = runpy.run_path(str(Path(__file__).parents[1] / "gunicorn.conf.py"))
    try:
        conf["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this is the test process, not a worker
    assert sentiment.lexicon._resources_cache is not None


def _terminate_other_connections(url: str) -> int:
    """What a PostgreSQL restart does to every pooled connection: the server ends it."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return len(
                conn.scalars(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def test_the_app_reconnects_by_itself_after_postgresql_dropped_its_connections(app, invite):
    """pool_pre_ping: a pooled connection the server ended (a restart, a failover) is
    replaced at checkout, so the first customer after it gets the page and not a 500. The
    same app without it fails that request, so the check does find dead connections."""
    from loyalty.db import db

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to restart")
    _, token = invite()
    settings = ("TESTING", "SECRET_KEY", "DATABASE_URL", "INSTANCE_PATH", "MAIL_URL", "BASE_URL")
    without = create_app(
        {name: app.config[name] for name in settings}
        | {"REPORT_SCHEDULE": [], "SQLALCHEMY_ENGINE_OPTIONS": {}}
    )
    try:
        for served in (app, without):
            client = served.test_client()
            assert client.get(f"/s/{token}").status_code == 200  # a connection in the pool
            db.session.remove()
            assert _terminate_other_connections(app.config["DATABASE_URL"]) >= 1
            if served is app:
                assert client.get(f"/s/{token}").status_code == 200
            else:  # the dead connection is used: the customer gets the "try again" page
                reply = client.get(f"/s/{token}")
                assert reply.status_code == 503 and "Retry-After" in reply.headers
    finally:
        with without.app_context():
            db.session.remove()
            db.engine.dispose()
