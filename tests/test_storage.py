"""A database that cannot store anything: SQLite on a full or read-only disk (a real tmpfs),
PostgreSQL refusing writes. The customer is asked to try again in a moment, in their
language, with their answers still in the form; staff pages say so; nothing is half-stored."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_URL, StaffAuth, _config
from werkzeug.datastructures import MultiDict

from loyalty import create_app, storage
from loyalty.db import db
from loyalty.models import Answer, FollowUp, Invitation, Response

COMMENT = "Leveringen var <sen>, og ingen svarede på mails. Æv."


@pytest.fixture(autouse=True)
def _forget():
    storage.forget()
    yield
    storage.forget()


def make_link() -> str:
    from loyalty.accounts.services import Invitee, upsert_contact
    from loyalty.outreach.invitations import create_invitation, token_for

    invitee = Invitee("mette@example.com", "Mette", "Acme A/S", "b2b", "da")
    invitation = create_invitation(upsert_contact(invitee), "post-sale")
    db.session.commit()
    return token_for(invitation)


def answer(client, token: str):
    from loyalty.survey.forms import form_token

    assert client.get(f"/s/{token}").status_code == 200
    # The page's own token (a staff sign-in in this test may put a staff form first).
    data = {"csrf_token": form_token(token), "nps": "3", "csat": "2", "ces": "2"}
    return client.post(f"/s/{token}", data={**data, "reason": COMMENT})


def stored() -> tuple[int, int, int, int]:
    db.session.rollback()
    count = lambda model: db.session.scalar(sa.select(sa.func.count()).select_from(model))  # noqa: E731
    answered = db.session.scalar(
        sa.select(sa.func.count()).where(Invitation.answered_at.is_not(None))
    )
    return count(Response), count(Answer), count(FollowUp), answered


def assert_asked_to_try_again(reply) -> None:
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == str(storage.RETRY_AFTER)
    html = reply.get_data(as_text=True)
    assert "Vi kan ikke gemme dit svar lige nu" in html  # the contact's language: Danish
    # What they typed is still in the form (escaped), and their score is still picked.
    assert "Leveringen var &lt;sen&gt;, og ingen svarede på mails. Æv." in html
    assert 'value="3" checked' in html or 'checked value="3"' in html or "checked" in html
    assert stored() == (0, 0, 0, 0)  # nothing half-written


# --- SQLite on a real disk that fills up or turns read-only ---------------------------------


@pytest.fixture
def small_disk(tmp_path: Path, migrated_template: str):
    """An app whose SQLite database is on its own 16 MB tmpfs (needs root to mount)."""
    if PG_URL:
        pytest.skip("SQLite's disk")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        shutil.copy(migrated_template, mount / "loyalty.db")
        app = create_app({**_config(tmp_path, f"sqlite:///{mount / 'loyalty.db'}")})
        with app.app_context():
            yield app, mount
            db.session.remove()
            db.engine.dispose()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], capture_output=True)
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Write zeros until the disk is full; the file is returned so it can be removed."""
    filler = folder / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    descriptor = os.open(filler, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(descriptor)
    os.close(descriptor)
    try:
        (folder / "probe").write_bytes(b"\0" * 8192)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    else:
        pytest.fail("the disk did not fill up")
    finally:
        (folder / "probe").unlink(missing_ok=True)
    return filler


def test_a_full_disk_asks_the_customer_to_try_again_and_keeps_the_answer(small_disk):
    app, mount = small_disk
    token = make_link()
    # The write-ahead log is emptied, so the next commit must grow a file on the disk.
    db.session.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    db.session.commit()
    client, staff = app.test_client(), app.test_client()
    StaffAuth(staff).login("support")  # signed in before the disk filled up
    filler = fill(mount)
    assert_asked_to_try_again(answer(client, token))
    assert "The database is in trouble" in staff.get("/triage").get_data(as_text=True)

    filler.unlink()  # room again: the same answer goes in, once
    storage.forget()
    assert answer(client, token).status_code == 303
    assert stored() == (1, 1, 1, 1)
    assert "The database is in trouble" not in staff.get("/triage").get_data(as_text=True)


def test_a_read_only_database_asks_the_customer_to_try_again(small_disk):
    app, mount = small_disk
    token = make_link()
    client = app.test_client()
    staff = app.test_client()
    StaffAuth(staff).login("support")  # signed in before the database turned read-only
    db.session.remove()
    db.engine.dispose()

    def read_only(connection, _record) -> None:
        connection.execute("PRAGMA query_only = ON")  # SQLite refuses every write

    sa.event.listen(db.engine, "connect", read_only)
    try:
        assert_asked_to_try_again(answer(client, token))
        storage.forget()  # a process that saw no refusal learns of it from its own check
        assert "The database is in trouble" in staff.get("/triage").get_data(as_text=True)
        # A score tapped in the email is not stored either; the page can send it again.
        from loyalty.survey.forms import form_token

        partial = client.post(
            f"/s/{token}/partial", data={"nps": "3", "csrf_token": form_token(token)}
        )
        assert partial.status_code == 503 and partial.headers["Retry-After"]
        assert stored() == (0, 0, 0, 0)
    finally:
        db.session.remove()
        sa.event.remove(db.engine, "connect", read_only)
        db.engine.dispose()

    # The whole disk read-only: SQLite cannot even read its write-ahead log, so every page
    # is the friendly "try again in a moment", never a 500.
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    page = client.get(f"/s/{token}")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "Prøv igen om et øjeblik" in page.get_data(as_text=True)  # no Accept-Language: da
    db.session.remove()
    db.engine.dispose()


# --- PostgreSQL refusing writes ---------------------------------------------------------------


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
def test_postgresql_refusing_writes_asks_the_customer_to_try_again(app, client):
    token = make_link()
    staff = app.test_client()
    StaffAuth(staff).login("support")  # signed in before the database refused writes
    name = sa.engine.make_url(PG_URL).database
    db.session.remove()
    with db.engine.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        conn.commit()
    db.engine.dispose()  # new connections are read-only
    try:
        assert_asked_to_try_again(answer(client, token))
        storage.forget()  # a process that saw no refusal learns of it from its own check
        assert "The database is in trouble" in staff.get("/triage").get_data(as_text=True)
    finally:
        db.session.remove()
        db.engine.dispose()
        writable = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with writable.connect() as conn:  # no transaction, so not a read-only one
            conn.execute(sa.text("SET default_transaction_read_only = off"))
            conn.execute(sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        writable.dispose()
    storage.forget()
    assert answer(client, token).status_code == 303
    assert stored() == (1, 1, 1, 1)


def test_a_database_error_that_is_not_a_refusal_is_still_a_500(app):
    """A bug (a missing table) is not dressed up as a full disk."""
    with db.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as caught:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert not storage.is_refusal(caught.value)
    assert not storage.in_trouble()


class _HiddenFields(HTMLParser):
    """The hidden inputs of the page's forms, as a browser would send them (unescaped)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.actions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.actions.append(named.get("action") or "")
        if tag == "input" and named.get("type") == "hidden":
            self.fields.append((named.get("name") or "", named.get("value") or ""))


def test_an_answer_that_meets_an_unreadable_database_keeps_what_was_typed(small_disk):
    """The whole disk read-only, so SQLite cannot even open its write-ahead log: the answer
    cannot be looked at, let alone stored. The customer's page says so in their language
    and carries everything they sent back in hidden fields; "Try again" once the disk is
    back stores the answer once."""
    from loyalty.survey.forms import form_token

    app, mount = small_disk
    token = make_link()
    client = app.test_client()
    assert client.get(f"/s/{token}").status_code == 200
    typed = "It was <b>late</b> & \"nobody\" answered 'my' mails. Æv."
    sent = [
        ("csrf_token", form_token(token)),
        ("nps", "3"),
        ("csat", "2"),
        ("ces", "2"),
        ("reason", typed),
    ]
    db.session.remove()
    db.engine.dispose()
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    try:
        reply = client.post(
            f"/s/{token}", data=MultiDict(sent), headers={"Accept-Language": "en-GB,en;q=0.8"}
        )
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == str(storage.RETRY_AFTER)
        html = reply.get_data(as_text=True)
        assert "Please try again in a moment" in html
        assert "Try again</button>" in html
        assert "<b>late</b>" not in html  # escaped, never markup
        assert "<script" not in html  # no JavaScript needed
        page = _HiddenFields()
        page.feed(html)
        assert page.actions == [f"/s/{token}"]
        assert page.fields == sent  # every pair, exactly as typed, in order

        danish = client.post(f"/s/{token}", data=MultiDict(sent))  # no Accept-Language
        assert danish.status_code == 503
        assert "Prøv igen</button>" in danish.get_data(as_text=True)
    finally:
        db.session.remove()
        db.engine.dispose()
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)

    storage.forget()
    again = client.post(page.actions[0], data=MultiDict(page.fields))  # the button
    assert again.status_code == 303
    assert stored() == (1, 1, 1, 1)
    comment = db.session.scalar(sa.select(Answer.text).where(Answer.text.is_not(None)))
    assert comment == typed


def test_only_the_survey_posts_carry_the_fields_back(small_disk):
    """A staff form (the sign-in) that meets the unreadable database gets the plain page:
    a password is never echoed into a page."""
    app, mount = small_disk
    client = app.test_client()
    from conftest import csrf_from

    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    db.session.remove()
    db.engine.dispose()
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    try:
        reply = client.post(
            "/login",
            data={"email": "a@example.com", "password": "secret-words", "csrf_token": csrf},
        )
        assert reply.status_code == 503
        html = reply.get_data(as_text=True)
        assert "secret-words" not in html and 'type="hidden"' not in html
    finally:
        db.session.remove()
        db.engine.dispose()
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")
def test_postgresql_turning_every_connection_away_keeps_what_was_typed(app, client):
    """PostgreSQL accepts no connection to the database at all (its connection limit 0, as
    when it is full of connections): the survey's answer cannot even be looked up. The
    customer's page keeps what they typed; "Try again" afterwards stores it once."""
    from loyalty.survey.forms import form_token

    token = make_link()
    assert client.get(f"/s/{token}").status_code == 200
    typed = 'Det var <b>sent</b> & "ingen" svarede. Æv.'
    sent = [("csrf_token", form_token(token)), ("nps", "3"), ("csat", "2"), ("ces", "2")]
    sent.append(("reason", typed))
    name = sa.engine.make_url(PG_URL).database
    admin = sa.create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    db.session.remove()
    db.engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" CONNECTION LIMIT 0'))
    try:
        reply = client.post(f"/s/{token}", data=MultiDict(sent))
        assert reply.status_code == 503 and reply.headers["Retry-After"]
        html = reply.get_data(as_text=True)
        assert "Prøv igen om et øjeblik" in html and "<b>sent</b>" not in html
        page = _HiddenFields()
        page.feed(html)
        assert page.fields == sent
    finally:
        db.session.remove()
        db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1'))
        admin.dispose()
    storage.forget()
    assert client.post(page.actions[0], data=MultiDict(page.fields)).status_code == 303
    assert stored() == (1, 1, 1, 1)
