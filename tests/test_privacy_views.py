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


def test_pending_import_uploads_are_exported_and_erased(client, auth, person):  # noqa: F811
    """An admin uploaded two CSV files at /admin/imports and has not confirmed them: one
    names her (her address in another case), one does not. Her export lists the first with
    the rows that mention her; her erasure deletes it, says so, and leaves the other."""
    from test_admin_uploads import confirm, pending_token, upload

    from loyalty.models import ImportUpload

    auth.login("admin")
    accounts = b"external_ref,name,segment\nF1,Fjord A/S,b2b\n"
    preview = upload(client, accounts, kind="accounts", filename="accounts.csv")
    assert confirm(client, pending_token(preview.text)).status_code in (200, 303)
    hers = (
        "email;name;language;account_ref\n"
        "ole@example.com;Ole Olsen;da;F1\n"
        f"{EMAIL.upper()};{NAME};da;F1\n"
    ).encode()
    uploaded = upload(client, hers, filename="fjord-contacts.csv")
    assert uploaded.status_code == 200
    her_upload = pending_token(uploaded.text)
    others = b"email,name,language,account_ref\nida@example.com,Ida Holm,da,F1\n"
    assert upload(client, others, filename="ida.csv").status_code == 200

    download = _post(client, "/admin/privacy/export", email=EMAIL)
    document = json.loads(download.get_data())
    (pending,) = document["pending_import_uploads"]
    assert pending["file"] == "fjord-contacts.csv" and pending["kind"] == "contacts"
    assert pending["uploaded_by"] == "admin@example.com" and pending["uploaded_at"]
    assert pending["rows"] == [
        {
            "line": 3,
            "cells": {
                "email": EMAIL.upper(),
                "name": NAME,
                "language": "da",
                "account_ref": "F1",
            },
        }
    ]
    assert "ole@example.com" not in json.dumps(document)
    assert "In 1 uploaded import files waiting for confirmation." in document["summary"]

    done = _post(client, "/admin/privacy/erase", email=EMAIL, confirm=EMAIL)
    assert done.status_code == 200 and "pending import uploads: 1" in done.text
    db.session.expire_all()
    left = db.session.scalars(sa.select(ImportUpload.filename).order_by(ImportUpload.id)).all()
    assert left == ["ida.csv"]
    assert all(EMAIL not in bytes(u.data).decode().lower() for u in db.session.scalars(
        sa.select(ImportUpload)))  # fmt: skip
    # The admin's confirmation button, still on their screen, imports nothing now.
    assert confirm(client, her_upload).status_code == 404


def test_someone_only_in_a_pending_upload_is_pointed_at_it(client, auth):
    """Not a contact yet, but in a file waiting at /admin/imports: the request says where
    they are rather than that nothing is held."""
    from test_admin_uploads import upload

    auth.login("admin")
    reply = _post(client, "/admin/privacy/export", email="new.person@example.com")
    assert reply.status_code == 400 and "uploaded import" not in reply.text
    named = b"external_ref,name,segment\nF2,Sales: New.Person@example.com,b2b\n"
    assert upload(client, named, kind="accounts", filename="named.csv").status_code == 200
    for path in ("/admin/privacy/export", "/admin/privacy/erase"):
        reply = _post(
            client, path, email="new.person@example.com", confirm="new.person@example.com"
        )
        assert reply.status_code == 400
        assert "No contact has the address new.person@example.com, but 1 uploaded" in reply.text
        assert "(named.csv)" in reply.text and "/admin/imports" in reply.text
