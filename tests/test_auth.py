"""Staff sign-in and the role check on every staff page."""

from __future__ import annotations

import pytest
from conftest import csrf_from

STAFF_ROUTES = ["/responses"]


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


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com", "/\\evil"])
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
