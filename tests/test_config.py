"""Configuration layers and the generated secret key."""

from __future__ import annotations

from pathlib import Path

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
    import runpy
    from pathlib import Path

    from loyalty import sentiment

    monkeypatch.setattr(sentiment.lexicon, "_resources_cache", None)
    conf = runpy.run_path(str(Path(__file__).parents[1] / "gunicorn.conf.py"))
    conf["post_worker_init"](worker=None)
    assert sentiment.lexicon._resources_cache is not None
