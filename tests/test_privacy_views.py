"""``/admin/privacy``: only admins serve privacy requests; the export downloads, the
erasure needs the address typed twice and shows its receipt."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_from
from test_privacy import EMAIL, NAME, person  # noqa: F401 (a fixture)

from loyalty.db import db
from loyalty.models import Contact

ROUTES = [
    ("GET", "/admin/privacy", None),
    ("POST", "/admin/privacy/export", {"email": EMAIL}),
    ("POST", "/admin/privacy/erase", {"email": EMAIL, "confirm": EMAIL}),
]


def _post(client, path, **form):
    form["csrf_token"] = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post(path, data=form)


def test_the_route_table_covers_every_privacy_route(app):
    covered = {(m, p) for m, p, _ in ROUTES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("privacy."):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (method, rule.rule) in covered, f"{method} {rule.rule}"


@pytest.mark.parametrize(("method", "path", "data"), ROUTES)
@pytest.mark.parametrize("role", [None, "executive", "support"])
def test_nobody_but_an_admin(client, auth, person, role, method, path, data):  # noqa: F811
    if role:
        auth.login(role)
    reply = client.get(path) if method == "GET" else _post(client, path, **data)
    assert reply.status_code == (302 if role is None else 403)
    db.session.expire_all()
    assert db.session.get(Contact, person.id).erased_at is None


def test_an_admin_exports_then_erases(client, auth, person):  # noqa: F811
    auth.login("admin")
    page = client.get("/admin/privacy").get_data(as_text=True)
    assert "Privacy requests" in page and "None yet." in page
    download = _post(client, "/admin/privacy/export", email=EMAIL.upper())
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert "attachment" in download.headers["Content-Disposition"]
    assert json.loads(download.get_data())["contact"]["name"] == NAME

    unknown = _post(client, "/admin/privacy/export", email="nobody@example.com")
    assert unknown.status_code == 400 and "No contact has the address" in unknown.text
    mismatch = _post(client, "/admin/privacy/erase", email=EMAIL, confirm="other@example.com")
    assert mismatch.status_code == 400 and "second time" in mismatch.text
    db.session.expire_all()
    assert db.session.get(Contact, person.id).erased_at is None

    done = _post(client, "/admin/privacy/erase", email=EMAIL, confirm=EMAIL)
    assert done.status_code == 200 and "Erasure receipt" in done.text
    assert EMAIL not in done.text and NAME not in done.text
    rows = re.findall(r"<tr><td>\d+</td><td>(\w+)</td>", done.text)
    assert rows == ["erase", "export"] and "admin@example.com" in done.text
    from loyalty.models import AuditEvent

    logged = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("privacy.%")))
    assert [(e.action, e.actor) for e in logged] == [
        ("privacy.export", "admin@example.com"), ("privacy.erase", "admin@example.com"),
    ]  # fmt: skip
    again = _post(client, "/admin/privacy/erase", email=EMAIL, confirm=EMAIL)
    assert again.status_code == 400 and "was erased" in again.text
