"""``/admin``: staff users invited by e-mail (a real SMTP server on loopback), roles,
deactivation, resets, the last admin kept; the survey definitions previewed; every route
walked with every role."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_from
from flask import g

from loyalty.admin import staff
from loyalty.db import db
from loyalty.models import AuditEvent, User


def post(client, path, **form):
    form["csrf_token"] = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post(path, data=form)


def user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalars(sa.select(User).where(User.email == email)).one()


def link_in(message) -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(r"http://survey\.test(/password/\S+)", text)
    assert match, text
    return match.group(1)


def sign_in(client, email, password):
    forget_who_asked_last()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_an_invited_user_sets_a_password_from_the_emailed_link_once(app, client, auth, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    auth.login("admin")
    reply = post(client, "/admin/users", email="New.Lead@Example.com", role="support")
    assert reply.status_code == 303
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Invited new.lead@example.com as support" in page
    [message] = smtp_server.messages
    assert message["To"] == "new.lead@example.com"
    assert "admin@example.com has invited you" in message.get_body(("plain",)).get_content()
    link = link_in(message)
    invited = user("new.lead@example.com")
    assert invited.role == "support" and invited.active
    client.post("/logout", data={"csrf_token": csrf_from(page)})

    form = client.get(link)
    assert form.status_code == 200 and "new.lead@example.com (support)" in form.get_data(True)
    token = csrf_from(form.get_data(as_text=True))
    differ = client.post(
        link, data={"password": "a long secret", "confirm": "other", "csrf_token": token}
    )
    assert differ.status_code == 400 and "The two passwords differ." in differ.get_data(True)
    short = client.post(link, data={"password": "short", "confirm": "short", "csrf_token": token})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(True)
    done = client.post(
        link, data={"password": "a long secret", "confirm": "a long secret", "csrf_token": token}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert client.get(link).status_code == 404  # once only
    assert "This link no longer works" in client.get(link).get_data(as_text=True)
    assert sign_in(client, "new.lead@example.com", "a long secret").status_code == 302
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert "user.invite" in actions and "user.password_set" in actions


def test_a_set_password_link_expires(app, client):
    invited = staff.invite("late@example.com", "executive")
    db.session.commit()
    token = staff.link_token(invited)
    assert staff.user_for_token(token) == invited
    app.config["SET_PASSWORD_HOURS"] = -1  # every link is older than that
    assert client.get(f"/password/{token}").status_code == 404
    assert client.get("/password/forged.token").status_code == 404


def test_an_invitation_whose_mail_is_refused_keeps_the_user_and_says_so(
    app, client, auth, smtp_server
):
    app.config["MAIL_URL"] = smtp_server.url
    smtp_server.refuse = "550 Mailbox unavailable"
    auth.login("admin")
    post(client, "/admin/users", email="bounce@example.com", role="executive")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "could not be sent" in page and "550" in page
    assert user("bounce@example.com").role == "executive"


@pytest.mark.parametrize(
    ("email", "role", "reason"),
    [
        ("not an address", "support", "email:"),
        ("admin@example.com", "support", "already exists"),
        ("x@example.com", "owner", "role: must be one of"),
    ],
)
def test_a_bad_invitation_is_refused_with_its_reason(client, auth, email, role, reason):
    auth.login("admin")
    reply = post(client, "/admin/users", email=email, role=role)
    assert reply.status_code == 400 and reason in reply.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_roles_deactivation_and_the_last_admin(client, auth):
    auth.login("admin")
    me = user("admin@example.com")
    demoted = post(client, f"/admin/users/{me.id}/role", role="support")
    assert demoted.status_code == 409 and "last active admin" in demoted.get_data(True)
    asked = client.get(f"/admin/users/{me.id}/deactivate")  # refused before the question
    assert asked.status_code == 409 and "last active admin" in asked.get_data(True)
    assert 'name="confirmed"' not in asked.get_data(True)
    gone = post(client, f"/admin/users/{me.id}/deactivate", confirmed="yes")
    assert gone.status_code == 409 and user("admin@example.com").active

    other = staff.create_user("second@example.com", "support", "correct horse battery")
    db.session.commit()
    assert post(client, f"/admin/users/{other.id}/role", role="admin").status_code == 303
    assert user("second@example.com").role == "admin"
    assert post(client, f"/admin/users/{other.id}/deactivate", confirmed="yes").status_code == 303
    assert not user("second@example.com").active
    assert sign_in(client, "second@example.com", "correct horse battery").status_code == 401
    assert post(client, f"/admin/users/{other.id}/reactivate").status_code == 303
    assert user("second@example.com").active
    bad = post(client, f"/admin/users/{other.id}/role", role="owner")
    assert bad.status_code == 400
    assert post(client, "/admin/users/999999/deactivate", confirmed="yes").status_code == 404
    assert post(client, "/admin/users/99999999999/reset", confirmed="yes").status_code == 404
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert {"user.role", "user.deactivate", "user.reactivate"} <= set(actions)


def forget_who_asked_last() -> None:
    """The test's app context, and its ``g``, is shared by every request of the test: where
    Flask-Login keeps the signed-in user and Flask-WTF the page's CSRF token. Two clients
    must not see each other's."""
    g.pop("csrf_token", None)
    g.pop("_login_user", None)


def test_a_deactivated_users_session_ends_at_once(app, client, auth):
    other_client = app.test_client()
    staff.create_user("lead@example.com", "support", "correct horse battery")
    db.session.commit()
    sign_in(other_client, "lead@example.com", "correct horse battery")
    assert other_client.get("/triage").status_code == 200
    forget_who_asked_last()
    auth.login("admin")
    assert (
        post(
            client, f"/admin/users/{user('lead@example.com').id}/deactivate", confirmed="yes"
        ).status_code
        == 303
    )
    forget_who_asked_last()
    assert other_client.get("/triage").status_code == 302


def test_a_reset_stops_the_old_password_and_mails_a_new_link(app, client, auth, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    staff.create_user("lead@example.com", "support", "correct horse battery")
    db.session.commit()
    auth.login("admin")
    assert (
        post(
            client, f"/admin/users/{user('lead@example.com').id}/reset", confirmed="yes"
        ).status_code
        == 303
    )
    [message] = smtp_server.messages
    assert "reset your password" in message.get_body(("plain",)).get_content()
    fresh = app.test_client()
    assert sign_in(fresh, "lead@example.com", "correct horse battery").status_code == 401
    link = link_in(message)
    forget_who_asked_last()
    token = csrf_from(fresh.get(link).get_data(as_text=True))
    fresh.post(
        link, data={"password": "brand new one", "confirm": "brand new one", "csrf_token": token}
    )
    assert sign_in(fresh, "lead@example.com", "brand new one").status_code == 302


def test_the_users_page_escapes_addresses_and_shows_the_last_sign_in(client, auth):
    auth.login("admin")
    html = client.get("/admin/users").get_data(as_text=True)
    assert "admin@example.com (you)" in html and "never" not in html.split("(you)")[1][:400]
    assert "<script" not in html.split("<main")[1].split("</main>")[0]


def test_the_surveys_page_and_a_preview_as_customers_see_it(client, auth):
    auth.login("admin")
    page = client.get("/admin/surveys").get_data(as_text=True)
    assert "post-sale" in page and "version" in page
    assert "sale after 3 days" in page and "reminder: after 4 days" in page
    assert "Hvad er den vigtigste grund til din vurdering?" in page
    da = client.get("/admin/surveys/post-sale/da")
    html = da.get_data(as_text=True)
    assert da.status_code == 200 and 'lang="da"' in html
    assert "Hvad er den vigtigste grund til din vurdering?" in html
    assert "Preview of <strong>post-sale</strong>" in html and " disabled>" in html
    assert 'class="staff-bar"' not in html  # what the customer sees: no staff menu
    assert client.get("/admin/surveys/post-sale/de").status_code == 404
    assert client.get("/admin/surveys/nope/da").status_code == 404


# --- every admin route, every role ------------------------------------------------------

#: method, path, form; what an admin gets
ROUTES = [
    ("GET", "/admin", None, 200),
    ("GET", "/admin/users", None, 200),
    ("POST", "/admin/users", {"email": "walk@example.com", "role": "support"}, 303),
    ("POST", "/admin/users/{user}/role", {"role": "executive"}, 303),
    ("GET", "/admin/users/{user}/deactivate", None, 200),
    ("POST", "/admin/users/{user}/deactivate", {"confirmed": "yes"}, 303),
    ("POST", "/admin/users/{user}/reactivate", {}, 303),
    ("GET", "/admin/users/{user}/reset", None, 200),
    ("POST", "/admin/users/{user}/reset", {"confirmed": "yes"}, 303),
    ("GET", "/admin/surveys", None, 200),
    ("GET", "/admin/surveys/post-sale/en", None, 200),
    ("GET", "/admin/imports", None, 200),
    ("POST", "/admin/imports", {"kind": "contacts"}, 400),  # no file
    ("POST", "/admin/imports/{upload}", {}, 303),
    ("POST", "/admin/imports/{upload}/discard", {}, 303),
]


def test_the_route_table_covers_every_admin_route(app):
    covered = {(m, p) for m, p, _, _ in ROUTES}
    names = {"<int:user_id>": "{user}", "<token>": "{upload}", "<survey_id>": "post-sale"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("admin.", "admin_imports.")):
            path = rule.rule.replace("<language>", "en")
            for name, value in names.items():
                path = path.replace(name, value)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (method, path) in covered, f"{method} {rule.rule} is not in ROUTES"


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES)
@pytest.mark.parametrize("role", [None, "executive", "support", "admin"])
def test_every_admin_route_with_every_role(client, auth, role, method, path, data, allowed):
    from loyalty.models import ImportUpload, utcnow

    target = staff.create_user("target@example.com", "support", "correct horse battery")
    if path.endswith("/reactivate"):
        target.active = False
    upload = ImportUpload(
        token="t" * 43, kind="accounts", filename="a.csv", uploaded_at=utcnow(),
        data=b"external_ref,name,segment\nW1,Walk In A/S,b2b\n",
    )  # fmt: skip
    db.session.add(upload)
    db.session.commit()
    before = (target.role, target.active, target.password_hash)
    path = path.format(user=target.id, upload=upload.token)
    if role:
        auth.login(role)
    reply = client.get(path) if method == "GET" else post(client, path, **data)
    expected = {None: 302, "executive": 403, "support": 403}.get(role or "", allowed)
    if role is None:
        expected = 302
    assert reply.status_code == expected, reply.get_data(as_text=True)[:500]
    if role != "admin":
        db.session.expire_all()
        target = db.session.get(User, target.id)
        assert (target.role, target.active, target.password_hash) == before
        assert db.session.get(ImportUpload, upload.id) is not None
        assert db.session.scalar(sa.select(User).where(User.email == "walk@example.com")) is None


def test_a_link_made_before_a_password_change_no_longer_works(app):
    someone = staff.create_user("someone@example.com", "support", "correct horse battery")
    db.session.commit()
    token = staff.link_token(someone)
    staff.set_password(someone, "another password")
    db.session.commit()
    assert staff.user_for_token(token) is None
    assert dt.timedelta(hours=app.config["SET_PASSWORD_HOURS"]) == dt.timedelta(hours=72)


JUNK = ["", "\x00", "x" * 300, "<b>x</b>", "-1", "99999999999", "ä\u202e", "../../etc/passwd"]


def test_no_admin_form_answers_junk_with_a_server_error(app, client, auth):
    """Every admin POST, with every field the pages send set to junk: a 4xx or a redirect,
    never a 500 (PostgreSQL refuses a NUL, an integer past its range, ...)."""
    auth.login("admin")
    target = staff.create_user("target@example.com", "support", "correct horse battery")
    db.session.commit()
    fields = ("email", "role", "kind", "survey", "name", "url", "events", "confirm", "q")
    posts = [
        rule.rule.replace("<int:user_id>", str(target.id))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin") and "POST" in rule.methods
    ]
    posts = [re.sub(r"<(int:)?\w+>", "1", path) for path in posts]
    for path in posts:
        for junk in JUNK:
            forget_who_asked_last()
            reply = post(client, path, **dict.fromkeys(fields, junk))
            assert reply.status_code < 500, (path, junk, reply.status_code)
            assert "/login" not in reply.headers.get("Location", ""), path  # still signed in
            db.session.rollback()
    assert len(posts) >= 15


def test_deactivating_and_resetting_ask_first(app, client, auth, smtp_server):
    """Each opens a page that says what will happen (nothing changes on the GET); a POST
    that skipped it is a 400 that says so, and changes nothing."""
    app.config["MAIL_URL"] = smtp_server.url
    lead = staff.create_user("lead@example.com", "support", "correct horse battery")
    db.session.commit()
    auth.login("admin")
    listed = client.get("/admin/users").get_data(as_text=True)
    assert f'<form method="get" action="/admin/users/{lead.id}/deactivate"' in listed
    assert f'<form method="get" action="/admin/users/{lead.id}/reset"' in listed

    asked = client.get(f"/admin/users/{lead.id}/deactivate")
    assert asked.status_code == 200 and "Deactivate lead@example.com?" in asked.text
    assert "can no longer sign in" in asked.text and "every session" in asked.text
    assert f'<form method="post" action="/admin/users/{lead.id}/deactivate">' in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert f'href="/admin/users#user-{lead.id}"' in asked.text
    asked = client.get(f"/admin/users/{lead.id}/reset")
    assert asked.status_code == 200 and "Reset the password of lead@example.com?" in asked.text
    assert "stops working at once" in asked.text and "72 hours" in asked.text

    before = user("lead@example.com").password_hash
    for path, what in (("deactivate", "deactivating a user"), ("reset", "resetting a password")):
        skipped = post(client, f"/admin/users/{lead.id}/{path}")
        assert skipped.status_code == 400
        assert f"Nothing was changed: {what} must be confirmed first" in skipped.text
    after = user("lead@example.com")
    assert after.active and after.password_hash == before and smtp_server.messages == []

    assert post(client, f"/admin/users/{lead.id}/reset", confirmed="yes").status_code == 303
    assert len(smtp_server.messages) == 1
    assert post(client, f"/admin/users/{lead.id}/deactivate", confirmed="yes").status_code == 303
    assert not user("lead@example.com").active
    done = client.get(f"/admin/users/{lead.id}/deactivate")
    assert done.status_code == 303 and "is deactivated already" in client.get("/admin/users").text
    assert client.get(f"/admin/users/{lead.id}/reset").status_code == 409  # reactivate first
    assert client.get("/admin/users/999999/deactivate").status_code == 404
    assert client.get("/admin/users/99999999999/reset").status_code == 404
