"""A customer answers while the database cannot even be read (its disk turned read-only,
so SQLite cannot open its write-ahead log's shared memory), in a real browser with
JavaScript off: the page asks to try again in a moment and keeps what they typed; once the
disk is back, "Try again" stores the answer, once. SQLite on its own tmpfs (needs root)."""

from __future__ import annotations

import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_URL, _config
from playwright.sync_api import expect

from loyalty import create_app, storage
from loyalty.db import db
from loyalty.models import Answer, Response

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

TYPED = 'Leveringen var <b>sen</b> & "ingen" svarede på mails. Æv.'


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    if PG_URL:
        pytest.skip("SQLite's disk")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["mount", "-o", "remount,rw", str(mount)], capture_output=True)
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.fixture
def app(disk: Path, migrated_template: str, tmp_path: Path):
    """The test app (served by ``live_server``) with its database on the tmpfs."""
    shutil.copy(migrated_template, disk / "loyalty.db")
    app = create_app(_config(tmp_path, f"sqlite:///{disk / 'loyalty.db'}"))
    storage.forget()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    storage.forget()


def _remount(disk: Path, mode: str) -> None:
    db.session.remove()
    db.engine.dispose()  # no connection opened before keeps the file readable
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


def test_try_again_sends_what_was_typed_once_the_database_is_back(
    app: t.Any, disk: Path, invite: t.Callable[..., t.Any],
    new_context: t.Callable[..., BrowserContext],
) -> None:  # fmt: skip
    app.config["PARTIAL_SAVE_SECONDS"] = 3600
    _, token = invite(language="da", email="mette@example.com", name="Mette")
    page = new_context(java_script_enabled=False, locale="da-DK").new_page()
    page.goto(f"/s/{token}")
    page.get_by_role("group", name="Hvor sandsynligt").get_by_text("3", exact=True).click()
    page.get_by_label("Hvad er den vigtigste grund").fill(TYPED)

    _remount(disk, "ro")
    page.get_by_role("button", name="Send svar").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Vi kan ikke gemme noget lige nu. Prøv igen om et øjeblik."
    )
    kept = page.locator("form input[type=hidden][name=reason]")
    assert kept.get_attribute("value") == TYPED  # exactly as typed, markup and quotes too
    assert page.locator("b").count() == 0  # shown as text, never as markup

    _remount(disk, "rw")
    storage.forget()
    page.get_by_role("button", name="Prøv igen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")
    db.session.rollback()
    (response,) = db.session.scalars(sa.select(Response)).all()
    assert response.nps == 3
    comments = db.session.scalars(sa.select(Answer.text).where(Answer.text.is_not(None))).all()
    assert comments == [TYPED]
