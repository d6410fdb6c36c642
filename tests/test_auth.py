"""Staff sign-in and the role check on every staff page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from conftest import PG_URL, _config, csrf_from

from loyalty.db import db

STAFF_ROUTES = ["/responses"]
PASSWORD = "correct horse battery"
BEFORE_LOWER_CASE = "c0ffee000006"  # the revision before staff emails went lower-case


def test_login_page_then_sign_in_and_out(client, auth):
    assert client.get("/login").status_code == 200
    reply = auth.login("support")
    assert reply.status_code == 302 and reply.headers["Location"] == "/responses"
    assert client.get("/responses").status_code == 200
    token = csrf_from(client.get("/responses").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/responses").status_code == 302


def test_wrong_password_is_refused(client, auth):
    auth.login("admin")
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/responses").text)})
    token = csrf_from(client.get("/login").get_data(as_text=True))
    reply = client.post(
        "/login", data={"email": "admin@example.com", "password": "wrong", "csrf_token": token}
    )
    assert reply.status_code == 401 and "Wrong email or password" in reply.text


def test_login_without_csrf_is_refused(client):
    reply = client.post("/login", data={"email": "a@example.com", "password": "x"})
    assert reply.status_code == 400


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com",
        "/\\evil",
        "////evil.example",  # Location: //evil.example, which browsers follow off site
        "/%2F%2Fevil.example",
        "///evil.example",
    ],
)
def test_login_never_redirects_off_site(client, auth, target):
    from loyalty.auth import create_user
    from loyalty.db import db

    create_user("x@example.com", "admin", "correct horse battery")
    db.session.commit()
    token = csrf_from(client.get("/login").text)
    reply = client.post(
        f"/login?next={target}",
        data={"email": "x@example.com", "password": "correct horse battery", "csrf_token": token},
    )
    assert reply.headers["Location"] == "/responses"


def test_login_follows_a_path_on_this_site(client):
    from loyalty.auth import create_user
    from loyalty.db import db

    create_user("x@example.com", "admin", "correct horse battery")
    db.session.commit()
    token = csrf_from(client.get("/login").text)
    reply = client.post(
        "/login?next=/triage%3Fstatus%3Dall",
        data={"email": "x@example.com", "password": "correct horse battery", "csrf_token": token},
    )
    assert reply.headers["Location"] == "/triage?status=all"


@pytest.mark.parametrize("route", STAFF_ROUTES)
@pytest.mark.parametrize(
    ("role", "status"), [(None, 302), ("admin", 200), ("support", 200), ("executive", 200)]
)
def test_every_staff_route_for_every_role(client, auth, route, role, status):
    if role:
        auth.login(role)
    reply = client.get(route)
    assert reply.status_code == status
    if status == 302:
        assert reply.headers["Location"].startswith("/login?next=")


def test_root_sends_visitors_to_login_and_staff_to_work(client, auth):
    assert client.get("/").headers["Location"] == "/login"
    auth.login("admin")
    assert client.get("/").headers["Location"] == "/responses"


def test_forbidden_page_is_friendly(app, client, auth):
    from loyalty.auth import role_required

    @app.get("/only-admins")
    @role_required("admin")
    def only_admins():
        return "secret"

    auth.login("executive")
    reply = client.get("/only-admins", headers={"Accept-Language": "en-GB"})
    assert reply.status_code == 403 and "do not have access" in reply.text


def _sign_in(client, email: str, password: str = PASSWORD):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def _signed_in_email(client) -> str | None:
    from loyalty.models import User

    with client.session_transaction() as session:
        user_id = session.get("_user_id")  # "<id>:<session token>"
    return db.session.get(User, int(user_id.partition(":")[0])).email if user_id else None


def _user_emails() -> list[str]:
    from loyalty.models import User

    db.session.expire_all()
    return db.session.scalars(sa.select(User.email).order_by(User.id)).all()


def test_a_second_user_differing_only_in_case_is_refused(app):
    from loyalty.auth import create_user

    create_user(" Ann@Example.com ", "admin", PASSWORD)
    db.session.commit()
    for email in ("ann@example.com", "ANN@example.COM"):
        with pytest.raises(ValueError, match="email: a user ann@example.com already exists"):
            create_user(email, "support", PASSWORD)
    db.session.rollback()
    assert _user_emails() == ["ann@example.com"]


def test_cli_refuses_a_second_user_differing_only_in_case(runner):
    create = ["user", "create", "--role", "admin", "--password", PASSWORD, "--email"]
    assert runner.invoke(args=[*create, "Ann@example.com"]).exit_code == 0
    result = runner.invoke(args=[*create, "ann@example.com"])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "Error: email: a user ann@example.com already exists" in result.output
    assert "Traceback" not in result.output
    assert _user_emails() == ["ann@example.com"]


@pytest.mark.parametrize("created_as", ["ann@example.com", "Ann@Example.com"])
@pytest.mark.parametrize(
    "signed_in_as", ["ANN@Example.com", " ann@EXAMPLE.com ", "ann@example.com"]
)
def test_sign_in_does_not_care_about_case(app, client, created_as, signed_in_as):
    from loyalty.auth import create_user

    create_user(created_as, "support", PASSWORD)
    db.session.commit()
    reply = _sign_in(client, signed_in_as)
    assert reply.status_code == 302 and reply.headers["Location"] == "/responses"
    assert _signed_in_email(client) == "ann@example.com"


@pytest.fixture
def app_before_lower_case(tmp_path):
    """An app whose database was migrated from empty to the revision before this change."""
    from flask_migrate import upgrade

    from loyalty import create_app

    app = create_app(_config(tmp_path, PG_URL or f"sqlite:///{tmp_path / 'before.db'}"))
    with app.app_context():
        if PG_URL:
            _empty_postgresql_schema()
        upgrade(revision=BEFORE_LOWER_CASE)
        yield app
        db.session.remove()
        if PG_URL:  # the other tests share this database and expect it at head
            _empty_postgresql_schema()
            upgrade()
        db.engine.dispose()


def _empty_postgresql_schema() -> None:
    db.engine.dispose()  # no open connection may hold a lock on the tables
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


def _insert_users(*emails: str) -> None:
    from werkzeug.security import generate_password_hash

    password_hash = generate_password_hash(PASSWORD)
    with db.engine.begin() as conn:
        for email in emails:
            conn.execute(
                sa.text(
                    "INSERT INTO users (email, password_hash, role, active, created_at) "
                    "VALUES (:email, :password_hash, 'support', :active, :created_at)"
                ),
                {
                    "email": email,
                    "password_hash": password_hash,
                    "active": True,
                    "created_at": dt.datetime(2026, 1, 1),
                },
            )


def _rows() -> list[tuple[int, str]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, email FROM users ORDER BY id"))
        return [(id_, email) for id_, email in rows]


def _revision() -> str:
    with db.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))


def test_upgrade_refuses_users_whose_emails_differ_only_in_case(app_before_lower_case):
    from alembic import command
    from flask import current_app
    from flask_migrate import upgrade

    _insert_users("Ann@example.com", "ann@example.com", "Bo@example.com")
    before = _rows()
    with pytest.raises(SystemExit) as exit_:  # `flask db upgrade`: "Error: ...", no traceback
        upgrade()
    assert exit_.value.code == 1
    config = current_app.extensions["migrate"].migrate.get_config()
    with pytest.raises(RuntimeError) as error:
        command.upgrade(config, "head")
    message = str(error.value)
    assert "Ann@example.com (id 1), ann@example.com (id 2)" in message
    assert "Bo@example.com" not in message
    assert "Nothing was changed" in message and "Rename one user" in message
    assert "db upgrade` again" in message
    assert _rows() == before and _revision() == BEFORE_LOWER_CASE

    # The admin renames one of them, as told, and runs the upgrade again.
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET email = 'Ann.Old@example.com' WHERE id = 1"))
    upgrade()
    assert _rows() == [(1, "ann.old@example.com"), (2, "ann@example.com"), (3, "bo@example.com")]
    assert _revision() != BEFORE_LOWER_CASE


def test_upgrade_lower_cases_staff_emails_and_they_sign_in_in_any_case(app_before_lower_case):
    from flask_migrate import upgrade

    from loyalty.auth import create_user

    _insert_users("Ann@Example.com", "bo@example.com", "ÆRØ@Example.dk")
    upgrade()
    assert _rows() == [(1, "ann@example.com"), (2, "bo@example.com"), (3, "ærø@example.dk")]
    with pytest.raises(ValueError, match="already exists"):
        create_user("ANN@example.com", "admin", PASSWORD)
    db.session.rollback()
    client = app_before_lower_case.test_client()
    assert _sign_in(client, "Ann@Example.com").status_code == 302
    assert _signed_in_email(client) == "ann@example.com"


@pytest.mark.parametrize("email", ["a\x00@example.com", "ann@example.com\r\n", "\x1b@x.dk"])
def test_control_characters_in_the_sign_in_address_are_a_wrong_password(client, email):
    token = csrf_from(client.get("/login").text)
    reply = client.post("/login", data={"email": email, "password": "x" * 9, "csrf_token": token})
    assert reply.status_code in (400, 401)


def test_an_old_session_cookie_stops_working_at_sign_out(app, client, auth):
    auth.login("support")
    with client.session_transaction() as session:
        copied = dict(session)  # what someone who stole the cookie would have
    token = csrf_from(client.get("/responses").text)
    client.post("/logout", data={"csrf_token": token})
    with client.session_transaction() as session:
        session.update(copied)
    assert client.get("/responses").status_code == 302


def test_staff_are_signed_out_after_a_while_without_a_request(app, client, auth):
    auth.login("support")
    assert client.get("/responses").status_code == 200
    with client.session_transaction() as session:
        session["seen"] -= 60 * app.config["STAFF_IDLE_MINUTES"] + 1
    reply = client.get("/responses")
    assert reply.status_code == 302 and "/login" in reply.headers["Location"]
    assert client.get("/responses").status_code == 302


def test_a_new_anti_forgery_token_at_sign_in(client, auth):
    before = csrf_from(client.get("/login").text)
    auth.login("support")
    after = csrf_from(client.get("/responses").text)
    assert before != after
    with client.session_transaction() as session:
        assert session.permanent


def test_https_cookies_are_secure_and_host_only(tmp_path):
    from loyalty import create_app

    app = create_app({**_config(tmp_path, "sqlite://"), "BASE_URL": "https://feedback.example.com"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-loyalty"
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() == 12 * 3600


def test_sign_ins_are_logged_without_passwords_or_addresses(app, client, auth, caplog):
    """30 wrong passwords in 15 s must leave a trace: each failure a WARNING with the remote
    address and a hint of the address (never the address or password), a success INFO."""
    import logging

    from conftest import csrf_from

    auth.login("support", "lead@example.com")
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/triage").text)})
    caplog.set_level(logging.INFO, logger=app.logger.name)
    caplog.clear()
    for email in ("Lead@example.com", "lead@example.com", "stranger@example.org"):
        token = csrf_from(client.get("/login").text)
        data = {"email": email, "password": "guess-Tr0ub4dor", "csrf_token": token}
        assert client.post("/login", data=data).status_code == 401
    token = csrf_from(client.get("/login").text)
    no_password = {"email": "x@example.com", "csrf_token": token}
    assert client.post("/login", data=no_password).status_code == 400
    auth.login("support", "lead@example.com")
    records = [r for r in caplog.records if "sign-in" in r.getMessage()]
    text = "\n".join(r.getMessage() for r in records)
    assert [r.levelno for r in records] == [logging.WARNING] * 4 + [logging.INFO]
    assert all("127.0.0.1" in r.getMessage() for r in records)
    assert "guess-Tr0ub4dor" not in text and "correct horse" not in text
    assert "lead@example.com" not in text.lower() and "stranger" not in text
    hints = [re.search(r"hint (\w+)", r.getMessage())[1] for r in records[:3]]
    assert hints[0] == hints[1] != hints[2]  # one address, any case: one hint
    assert "unknown address" in records[2].getMessage()


def test_sign_in_starts_a_new_session(client, auth):
    """Nothing planted in the session before sign-in survives it (session fixation)."""
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
        session["_fresh"] = False
    auth.login("support")
    with client.session_transaction() as session:
        assert "planted" not in session and session["_fresh"] is True


def test_sign_out_ends_the_session_on_every_device(app, auth):
    """Signed in on a laptop and a phone: signing out on one signs out both."""
    from conftest import StaffAuth

    laptop, phone = app.test_client(), app.test_client()
    StaffAuth(laptop).login("support", "lead@example.com")
    StaffAuth(phone).login("support", "lead@example.com")
    assert laptop.get("/triage").status_code == phone.get("/triage").status_code == 200
    laptop.post("/logout", data={"csrf_token": csrf_from(laptop.get("/triage").text)})
    assert phone.get("/triage").status_code == 302
    assert laptop.get("/triage").status_code == 302
